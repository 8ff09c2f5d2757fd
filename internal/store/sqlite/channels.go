package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/imagegw/imagegw/internal/store"
)

// SetChannelEnabled records the channel's switch (one row per channel).
func (s *Store) SetChannelEnabled(ctx context.Context, channel string, enabled bool, at time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO channel_switches (channel, enabled, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (channel) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at`,
			channel, enabled, micros(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set channel %s enabled: %w", channel, err)
	}
	return nil
}

// ChannelSwitches returns every channel switch, by channel name.
func (s *Store) ChannelSwitches(ctx context.Context) ([]store.ChannelSwitch, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT channel, enabled, updated_at FROM channel_switches ORDER BY channel`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: channel switches: %w", err)
	}
	defer rows.Close()
	var out []store.ChannelSwitch
	for rows.Next() {
		var cs store.ChannelSwitch
		var at int64
		if err := rows.Scan(&cs.Channel, &cs.Enabled, &at); err != nil {
			return nil, fmt.Errorf("sqlite: channel switches: %w", err)
		}
		cs.UpdatedAt = fromMicros(at)
		out = append(out, cs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: channel switches: %w", err)
	}
	return out, nil
}
