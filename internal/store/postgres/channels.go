package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/imagegw/imagegw/internal/store"
)

// SetChannelEnabled records the channel's switch (one row per channel).
func (s *Store) SetChannelEnabled(ctx context.Context, channel string, enabled bool, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO channel_switches (channel, enabled, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (channel) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at`,
		channel, enabled, at.UTC())
	if err != nil {
		return fmt.Errorf("postgres: set channel %s enabled: %w", channel, err)
	}
	return nil
}

// ChannelSwitches returns every channel switch, by channel name.
func (s *Store) ChannelSwitches(ctx context.Context) ([]store.ChannelSwitch, error) {
	rows, err := s.pool.Query(ctx, `SELECT channel, enabled, updated_at FROM channel_switches ORDER BY channel COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: channel switches: %w", err)
	}
	defer rows.Close()
	var out []store.ChannelSwitch
	for rows.Next() {
		var cs store.ChannelSwitch
		if err := rows.Scan(&cs.Channel, &cs.Enabled, &cs.UpdatedAt); err != nil {
			return nil, fmt.Errorf("postgres: channel switches: %w", err)
		}
		cs.UpdatedAt = cs.UpdatedAt.UTC()
		out = append(out, cs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: channel switches: %w", err)
	}
	return out, nil
}
