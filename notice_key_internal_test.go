package guard

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The per-address budget of security notices (MaxNoticesPerRecipient) is
// kept by the address in canonical form (auth.CanonicalEmail: trimmed,
// case-folded, NFC), so that two spellings of one mailbox (as a store may
// answer it: decomposed accents, another case, surrounding space) share
// one budget: the notices beyond it queue, whatever their spelling.
func TestNoticeBudgetByCanonicalAddress(t *testing.T) {
	g := &Guard{notices: make(chan struct{}, MaxBackgroundNotices), lockNotices: make(chan struct{}, lockNoticeSlots),
		noticeTo: map[string]*noticeQueue{}, closing: make(chan struct{})}
	open := make(chan struct{})
	var mu sync.Mutex
	in, peak, sent := 0, 0, 0
	send := func(context.Context) error {
		mu.Lock()
		in++
		peak = max(peak, in)
		mu.Unlock()
		<-open
		mu.Lock()
		in--
		sent++
		mu.Unlock()
		return nil
	}
	spellings := []string{
		"jos\u00e9@example.test",   // canonical
		"jose\u0301@example.test",  // decomposed é
		" JOS\u00c9@Example.test ", // other case, space around
		"jos\u00e9@example.test\t",
		"JOSE\u0301@EXAMPLE.TEST",
		"jos\u00e9@example.test",
	}
	for _, to := range spellings {
		g.sendNotice(context.Background(), false, to, send)
	}
	inFlight := func() (now, most int) {
		mu.Lock()
		defer mu.Unlock()
		return in, peak
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := inFlight(); n >= MaxNoticesPerRecipient {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d notices in flight, want %d", n, MaxNoticesPerRecipient)
		}
	}
	time.Sleep(50 * time.Millisecond) // time for any more to start
	_, p := inFlight()
	close(open)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if p > MaxNoticesPerRecipient {
		t.Errorf("%d notices to one mailbox (in %d spellings) in flight at once, want at most %d", p, len(spellings), MaxNoticesPerRecipient)
	}
	if sent != len(spellings) {
		t.Errorf("%d notices sent by Close, want %d (those beyond the budget queued, not dropped)", sent, len(spellings))
	}
	if n := len(g.noticeTo); n != 0 {
		t.Errorf("%d addresses still tracked after Close, want 0", n)
	}
}
