package billing

import (
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// PeriodStart is the start of the budget period of the given kind that contains now: the zero
// time for store.PeriodTotal (and "" or any unknown period, which the store treats as total),
// UTC midnight of now's day for store.PeriodDaily, and 00:00 UTC on the first of now's month for
// store.PeriodMonthly. Holds, settlements and Balance queries use it as the period key, so a
// request admitted just before midnight settles against the period it was held in when the
// caller keeps the value from admission.
func PeriodStart(period string, now time.Time) time.Time { return store.PeriodStart(period, now) }

// Remaining is budget − spent − held, never below zero; ok is false for an unlimited budget.
func Remaining(b store.Balance) (remaining money.Amount, ok bool) {
	if b.Budget == nil {
		return 0, false
	}
	return max(*b.Budget-b.Spent-b.Held, 0), true
}
