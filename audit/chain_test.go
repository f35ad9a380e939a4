package audit

import (
	"bytes"
	"encoding/hex"
	"maps"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

func sampleEvent() Event {
	return Event{
		ID:        "00112233445566778899aabbccddeeff",
		Tenant:    "acme",
		Seq:       7,
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC),
		Actor:     Actor{Kind: ActorUser, ID: "u1", Email: "u1@example.com"},
		Action:    LoginFailed,
		Target:    "u1",
		IP:        "192.0.2.7",
		UserAgent: "curl/8",
		Outcome:   Failure,
		Reason:    "bad_password",
		Meta:      map[string]string{"b": "2", "a": "1"},
		PrevMAC:   bytes.Repeat([]byte{0xAA}, 32),
	}
}

// TestEventMACKnownAnswer freezes the canonical encoding (the expected
// values were computed by an independent implementation of the encoding
// documented in doc.go). A change to it
// breaks every stored chain, so it must be deliberate (a new domain
// version).
func TestEventMACKnownAnswer(t *testing.T) {
	e := sampleEvent()
	m := newMacer(testKey)
	got := hex.EncodeToString(m.eventMAC(&e))
	const want = "23c88dae0132bbb3a4d72603517df885ea9824351c4497562cc86c7ec3079e55"
	if got != want {
		t.Errorf("eventMAC = %s, want %s", got, want)
	}
	cp := Checkpoint{Seq: 9, MAC: bytes.Repeat([]byte{0xBB}, 32), At: time.Date(2026, 2, 1, 0, 0, 0, 1000, time.UTC)}
	got = hex.EncodeToString(m.checkpointMAC("acme", &cp))
	const wantCP = "82e11d9cdcc4749892a970537bf07b253708e00c060678fcd704e0e96b8e9176"
	if got != wantCP {
		t.Errorf("checkpointMAC = %s, want %s", got, wantCP)
	}
}

func TestEventMACCoversEveryField(t *testing.T) {
	m := newMacer(testKey)
	orig := sampleEvent()
	base := m.eventMAC(&orig)
	tests := []struct {
		name   string
		mutate func(e *Event)
	}{
		{"ID", func(e *Event) { e.ID += "0" }},
		{"Tenant", func(e *Event) { e.Tenant = "acme2" }},
		{"Seq", func(e *Event) { e.Seq++ }},
		{"Time", func(e *Event) { e.Time = e.Time.Add(time.Microsecond) }},
		{"TimeSeconds", func(e *Event) { e.Time = e.Time.Add(time.Second) }},
		{"Actor.Kind", func(e *Event) { e.Actor.Kind = ActorAPIKey }},
		{"Actor.ID", func(e *Event) { e.Actor.ID = "u2" }},
		{"Actor.Email", func(e *Event) { e.Actor.Email = "u2@example.com" }},
		{"Action", func(e *Event) { e.Action = LoginSucceeded }},
		{"Target", func(e *Event) { e.Target = "u2" }},
		{"IP", func(e *Event) { e.IP = "192.0.2.8" }},
		{"UserAgent", func(e *Event) { e.UserAgent = "curl/9" }},
		{"Outcome", func(e *Event) { e.Outcome = Success }},
		{"Reason", func(e *Event) { e.Reason = "locked" }},
		{"MetaValue", func(e *Event) { e.Meta["a"] = "9" }},
		{"MetaKey", func(e *Event) { delete(e.Meta, "a"); e.Meta["c"] = "1" }},
		{"MetaAdded", func(e *Event) { e.Meta["c"] = "" }},
		{"MetaRemoved", func(e *Event) { delete(e.Meta, "b") }},
		{"MetaNil", func(e *Event) { e.Meta = nil }},
		{"PrevMAC", func(e *Event) { e.PrevMAC[31] ^= 1 }},
		{"PrevMACEmpty", func(e *Event) { e.PrevMAC = nil }},
		// Moving bytes from one field to the next must not collide.
		{"BoundaryTargetIP", func(e *Event) { e.Target, e.IP = "u1192.0.2.7", "" }},
		{"BoundaryMeta", func(e *Event) { e.Meta = map[string]string{"a1": "", "b": "2"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEvent()
			tt.mutate(&e)
			if bytes.Equal(m.eventMAC(&e), base) {
				t.Errorf("changing %s does not change the MAC", tt.name)
			}
		})
	}
	t.Run("MACFieldNotCovered", func(t *testing.T) {
		e := sampleEvent()
		e.MAC = []byte("anything")
		if !bytes.Equal(m.eventMAC(&e), base) {
			t.Error("the MAC field itself changes the MAC")
		}
	})
}

func TestEventMACInvariants(t *testing.T) {
	m := newMacer(testKey)
	orig := sampleEvent()
	base := m.eventMAC(&orig)
	tests := []struct {
		name   string
		mutate func(e *Event)
	}{
		{"SameInstantOtherZone", func(e *Event) { e.Time = e.Time.In(time.FixedZone("X", 3600)) }},
		{"MetaInsertionOrder", func(e *Event) { e.Meta = map[string]string{"a": "1"}; e.Meta["b"] = "2" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEvent()
			tt.mutate(&e)
			if !bytes.Equal(m.eventMAC(&e), base) {
				t.Errorf("%s changes the MAC", tt.name)
			}
		})
	}
	t.Run("NilEqualsEmptyMeta", func(t *testing.T) {
		a, b := sampleEvent(), sampleEvent()
		a.Meta, b.Meta = nil, map[string]string{}
		if !bytes.Equal(m.eventMAC(&a), m.eventMAC(&b)) {
			t.Error("nil and empty Meta have different MACs")
		}
	})
	t.Run("OtherKey", func(t *testing.T) {
		e := sampleEvent()
		other := newMacer(bytes.Repeat([]byte{0x43}, 32))
		if bytes.Equal(other.eventMAC(&e), base) {
			t.Error("the key does not change the MAC")
		}
	})
}

func TestCheckpointMACCoversEveryField(t *testing.T) {
	m := newMacer(testKey)
	orig := Checkpoint{Seq: 9, MAC: bytes.Repeat([]byte{0xBB}, 32), At: time.Date(2026, 2, 1, 0, 0, 0, 1000, time.UTC)}
	base := m.checkpointMAC("acme", &orig)
	tests := []struct {
		name   string
		tenant string
		mutate func(cp *Checkpoint)
	}{
		{"Tenant", "acme2", func(*Checkpoint) {}},
		{"Seq", "acme", func(cp *Checkpoint) { cp.Seq++ }},
		{"MAC", "acme", func(cp *Checkpoint) { cp.MAC[0] ^= 1 }},
		{"At", "acme", func(cp *Checkpoint) { cp.At = cp.At.Add(time.Microsecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := Checkpoint{Seq: orig.Seq, MAC: bytes.Clone(orig.MAC), At: orig.At}
			tt.mutate(&cp)
			if bytes.Equal(m.checkpointMAC(tt.tenant, &cp), base) {
				t.Errorf("changing %s does not change the checkpoint MAC", tt.name)
			}
		})
	}
	t.Run("NotAnEventMAC", func(t *testing.T) {
		// Same bytes under the two domains must differ: a checkpoint MAC is
		// never accepted as an event MAC.
		e := Event{Tenant: "acme", Seq: 9}
		if bytes.Equal(m.eventMAC(&e), base) {
			t.Error("event and checkpoint domains collide")
		}
	})
}

func TestCheckLink(t *testing.T) {
	m := newMacer(testKey)
	prev := Link{Seq: 6, MAC: bytes.Repeat([]byte{0xAA}, 32)}
	good := sampleEvent()
	good.MAC = m.eventMAC(&good)
	tests := []struct {
		name   string
		tenant string
		mutate func(e *Event)
		want   string
	}{
		{"Valid", "acme", func(*Event) {}, ""},
		{"Gap", "acme", func(e *Event) { e.Seq = 8 }, reasonSeqGap},
		{"Repeat", "acme", func(e *Event) { e.Seq = 6 }, reasonSeqGap},
		{"OtherTenant", "other", func(*Event) {}, reasonTenantMismatch},
		{"PrevMAC", "acme", func(e *Event) { e.PrevMAC = []byte("x") }, reasonPrevMismatch},
		{"Field", "acme", func(e *Event) { e.Reason = "ok" }, reasonMACMismatch},
		{"MAC", "acme", func(e *Event) { e.MAC = bytes.Clone(e.MAC); e.MAC[0] ^= 1 }, reasonMACMismatch},
		{"MACTruncated", "acme", func(e *Event) { e.MAC = e.MAC[:16] }, reasonMACMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			e.Meta = maps.Clone(good.Meta)
			tt.mutate(&e)
			if got := m.checkLink(tt.tenant, prev, &e); got != tt.want {
				t.Errorf("checkLink = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChainTime(t *testing.T) {
	in := time.Date(2026, 1, 1, 1, 0, 0, 123456789, time.FixedZone("X", 3600))
	got := chainTime(in)
	want := time.Date(2026, 1, 1, 0, 0, 0, 123456000, time.UTC)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("chainTime = %v, want %v in UTC", got, want)
	}
}

// FuzzCanonicalInjective checks that two events with the same canonical
// encoding are the same event: no choice of field contents makes a MAC
// valid for a different event.
func FuzzCanonicalInjective(f *testing.F) {
	f.Add("a", "b", "c", "k", "v", "ab", "", "c", "k", "v", uint64(1), uint64(1))
	f.Add("u1", "192.0.2.7", "", "a1", "", "u", "1192.0.2.7", "", "a", "1", uint64(2), uint64(2))
	f.Add("x\x00", "", "\r\n", "", "", "x", "\x00", "\r\n", "", "", uint64(0), uint64(1<<63))
	f.Fuzz(func(t *testing.T, target1, ip1, reason1, mk1, mv1, target2, ip2, reason2, mk2, mv2 string, seq1, seq2 uint64) {
		mk := func(target, ip, reason, mk, mv string, seq uint64) Event {
			e := sampleEvent()
			e.Target, e.IP, e.Reason, e.Seq = target, ip, reason, seq
			e.Meta = map[string]string{mk: mv}
			return e
		}
		a := mk(target1, ip1, reason1, mk1, mv1, seq1)
		b := mk(target2, ip2, reason2, mk2, mv2, seq2)
		ea, eb := appendCanonical(nil, &a), appendCanonical(nil, &b)
		same := a.Target == b.Target && a.IP == b.IP && a.Reason == b.Reason && a.Seq == b.Seq && maps.Equal(a.Meta, b.Meta)
		if bytes.Equal(ea, eb) != same {
			t.Errorf("encodings equal = %v, events equal = %v", bytes.Equal(ea, eb), same)
		}
	})
}
