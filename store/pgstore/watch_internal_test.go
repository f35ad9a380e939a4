package pgstore

import (
	"encoding/hex"
	"testing"
	"time"
)

// notified drops exactly what a payload names, and everything for a
// payload it cannot read; a read that raced a notification is not kept.
func TestWatchNotified(t *testing.T) {
	w := newVersionWatch("guard")
	w.setListening(true, time.Now())
	fill := func() {
		for _, k := range []byte{kindIPLists, kindPolicies} {
			for _, tn := range []string{"acme", "globex"} {
				_, _, gen, live := w.lookup(k, tn)
				if !live {
					t.Fatal("not live")
				}
				w.keep(k, tn, 7, gen)
			}
		}
	}
	kept := func() int { return len(w.cache) }
	for _, tc := range []struct {
		payload string
		left    int
	}{
		{"i" + hex.EncodeToString([]byte("acme")), 3},
		{"r" + hex.EncodeToString([]byte("globex")), 3},
		{"i" + hex.EncodeToString([]byte("other")), 4},
		{"i*", 2},
		{"r*", 2},
		{"", 0},
		{"x616263", 0},
		{"izz", 0},
		{"i" + "6", 0},
	} {
		fill()
		w.notified(tc.payload)
		if got := kept(); got != tc.left {
			t.Errorf("after %q: %d kept, want %d", tc.payload, got, tc.left)
		}
	}

	// A value read before a notification is not kept after it.
	_, _, gen, _ := w.lookup(kindIPLists, "acme")
	w.notified("i" + hex.EncodeToString([]byte("globex")))
	w.keep(kindIPLists, "acme", 9, gen)
	if _, ok, _, _ := w.lookup(kindIPLists, "acme"); ok {
		t.Error("a read that raced a notification was kept")
	}

	// Nothing is used once the listener has not answered for WatchFresh.
	now := time.Now()
	w.now = func() time.Time { return now }
	w.setListening(true, now)
	_, _, gen, _ = w.lookup(kindIPLists, "acme")
	w.keep(kindIPLists, "acme", 9, gen)
	if v, ok, _, _ := w.lookup(kindIPLists, "acme"); !ok || v != 9 {
		t.Fatalf("lookup = %d, %v; want 9 kept", v, ok)
	}
	now = now.Add(WatchFresh)
	if _, ok, _, live := w.lookup(kindIPLists, "acme"); ok || live {
		t.Error("a version was used WatchFresh after the last answer")
	}
	w.proved(now)
	if _, ok, _, live := w.lookup(kindIPLists, "acme"); !ok || !live {
		t.Error("a proved listener does not answer from memory")
	}
	w.setListening(false, time.Time{})
	if _, ok, _, live := w.lookup(kindIPLists, "acme"); ok || live {
		t.Error("a version was used after the listener stopped")
	}
}

func TestWatchChannel(t *testing.T) {
	a, b := watchChannel("guard"), watchChannel("guard2")
	if a == b || len(a) != 40 || len(watchAppName(a)) > 63 {
		t.Errorf("channels %q, %q", a, b)
	}
}
