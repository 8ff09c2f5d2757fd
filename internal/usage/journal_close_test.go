package usage

import (
	"fmt"
	"testing"
)

// TestJournalClosesRightAfterOpening: a journal closed before its preallocator has started
// still closes. The preallocator used to read the fill channel from the journal when it began,
// and a close that came first had set it to nil, so the preallocator waited on a nil channel
// forever and close waited for it (a CI run hung for 12 minutes in TestSyncAfterCloseReturns).
func TestJournalClosesRightAfterOpening(t *testing.T) {
	dir := t.TempDir()
	for i := range 200 {
		j, _, err := openJournal(dir, 64<<20, -1)
		if err != nil {
			t.Fatal(err)
		}
		mustDeliver(t, async(j.close), fmt.Sprintf("close %d of a journal just opened", i))
	}
}
