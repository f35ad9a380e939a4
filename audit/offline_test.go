package audit_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// verifyOffline checks a JSON Lines export of tenant's whole chain with key,
// from the encoding documented in doc.go only: the checkpoint record (if
// any) by its CheckpointMAC, then each event's Seq, PrevMAC and MAC. It
// returns the number of events checked, or why the export fails.
func verifyOffline(key []byte, tenant, export string) (int, error) {
	str := func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	mac := func(b []byte) []byte {
		h := hmac.New(sha256.New, key)
		h.Write(b)
		return h.Sum(nil)
	}
	var prev []byte
	var seq uint64
	n := 0
	for i, line := range strings.Split(strings.TrimSuffix(export, "\n"), "\n") {
		var r struct {
			Seq  uint64            `json:"seq"`
			Meta map[string]string `json:"meta"`
		}
		var f map[string]any // the string fields
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return n, err
		}
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			return n, err
		}
		field := func(k string) string { v, _ := f[k].(string); return v }
		t, err := time.Parse(time.RFC3339Nano, field("time"))
		if err != nil {
			return n, err
		}
		recMAC, err := hex.DecodeString(field("mac"))
		if err != nil {
			return n, err
		}
		var b []byte
		switch {
		case field("id") == audit.ExportCheckpointID && i == 0:
			b = str(str(nil, "guard/audit/v1/checkpoint"), tenant)
			b = binary.BigEndian.AppendUint64(b, r.Seq)
			b = str(b, string(recMAC))
			b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, uint64(t.Unix())), uint32(t.Nanosecond()))
			if field("tenant") != tenant || hex.EncodeToString(mac(b)) != r.Meta["checkpoint_mac"] {
				return n, fmt.Errorf("checkpoint: bad checkpoint_mac")
			}
			prev, seq = recMAC, r.Seq
			continue
		case r.Seq != seq+1 || field("tenant") != tenant || field("prev_mac") != hex.EncodeToString(prev):
			return n, fmt.Errorf("seq %d: does not follow %d", r.Seq, seq)
		}
		b = str(str(str(nil, "guard/audit/v1/event"), field("id")), tenant)
		b = binary.BigEndian.AppendUint64(b, r.Seq)
		b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, uint64(t.Unix())), uint32(t.Nanosecond()))
		for _, k := range []string{"actor_kind", "actor_id", "actor_email", "action", "target", "ip", "user_agent", "outcome", "reason"} {
			b = str(b, field(k))
		}
		b = binary.AppendUvarint(b, uint64(len(r.Meta)))
		for _, k := range slices.Sorted(maps.Keys(r.Meta)) {
			b = str(str(b, k), r.Meta[k])
		}
		if !hmac.Equal(mac(str(b, string(prev))), recMAC) {
			return n, fmt.Errorf("seq %d: bad mac", r.Seq)
		}
		prev, seq = recMAC, r.Seq
		n++
	}
	return n, nil
}

// purgedChain returns a Log over a memstore holding n daily events of
// tenant acme, their two oldest purged, its store and the events.
func purgedChain(t *testing.T, n int) (*audit.Log, *memstore.Audit, []audit.Event) {
	t.Helper()
	c := newClock()
	s := memstore.NewAudit()
	l := newLog(t, s, withClock(c))
	evs := recordDaily(t, l, c, "acme", n)
	if got, err := l.Purge(context.Background(), "acme", evs[2].Time); err != nil || got != 2 {
		t.Fatalf("Purge = %d, %v; want 2", got, err)
	}
	return l, s, evs
}

// The documentation's offline verification: an export of a purged chain
// starts with the checkpoint, which anchors its first event; without it (the
// oldest events deleted by someone else, and the checkpoint record with
// them) the export fails, and so does one whose checkpoint was forged. The
// checkpoint is the one Verify reports.
func TestExportVerifiesOffline(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	recordN(t, l, "acme", 3)
	if n, err := verifyOffline(testKey, "acme", exportString(t, l, "acme", audit.Query{}, audit.JSONLines)); err != nil || n != 3 {
		t.Fatalf("export of a chain never purged: %d events, %v; want 3, nil", n, err)
	}
	l, _, _ = purgedChain(t, 6)
	out := exportString(t, l, "acme", audit.Query{}, audit.JSONLines)
	if n, err := verifyOffline(testKey, "acme", out); err != nil || n != 4 {
		t.Fatalf("purged export: %d events, %v; want 4, nil:\n%s", n, err, out)
	}
	rep, err := l.Verify(context.Background(), "acme")
	if err != nil || !rep.OK {
		t.Fatal(rep, err)
	}
	lines := strings.SplitAfter(out, "\n")
	cp := rep.Checkpoint
	if want := fmt.Sprintf(`{"id":%q,"tenant":"acme","seq":%d,"time":%q,"actor_kind":"","actor_id":"","actor_email":"",`+
		`"action":"","target":"","ip":"","user_agent":"","outcome":"","reason":"","meta":{"checkpoint_mac":"%x"},"prev_mac":"","mac":"%x"}`+"\n",
		audit.ExportCheckpointID, cp.Seq, cp.At.Format(time.RFC3339Nano), cp.CheckpointMAC, cp.MAC); lines[0] != want {
		t.Errorf("export's checkpoint record\n%s\nwant Verify's checkpoint\n%s", lines[0], want)
	}
	// An event edited.
	if edited := strings.Replace(out, `"outcome":"success"`, `"outcome":"failure"`, 1); edited == out {
		t.Fatal("no outcome to edit")
	} else if _, err := verifyOffline(testKey, "acme", edited); err == nil {
		t.Error("an export with an edited event verifies")
	}
	// The oldest remaining event deleted, and the checkpoint record with it.
	if _, err := verifyOffline(testKey, "acme", strings.Join(lines[2:], "")); err == nil {
		t.Error("an export without its checkpoint and first event verifies")
	}
	// A forged checkpoint standing in for the deleted event.
	forged := strings.Replace(lines[0], fmt.Sprintf(`"seq":%d`, cp.Seq), fmt.Sprintf(`"seq":%d`, cp.Seq+1), 1)
	if _, err := verifyOffline(testKey, "acme", forged+strings.Join(lines[2:], "")); err == nil {
		t.Error("an export with a forged checkpoint verifies")
	}
}

// Which exports carry the checkpoint record: those that reach the start of
// a purged chain, with no filter; first when ascending, last when
// descending; in CSV as a record with the event columns.
func TestExportCheckpointRecord(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	recordN(t, l, "acme", 3)
	if out := exportString(t, l, "acme", audit.Query{}, audit.JSONLines); strings.Contains(out, audit.ExportCheckpointID) {
		t.Errorf("export of a chain never purged holds a checkpoint record:\n%s", out)
	}
	l, s, evs := purgedChain(t, 5)
	cp, err := s.Checkpoint(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		q    audit.Query
		want int // index of the checkpoint record, -1 for the last, 9 for none
	}{
		{"All", audit.Query{}, 0},
		{"AfterCheckpoint", audit.Query{After: cp.Seq}, 0},
		{"AfterBelow", audit.Query{After: 1}, 0},
		{"AfterPast", audit.Query{After: cp.Seq + 1}, 9},
		{"Desc", audit.Query{Desc: true}, -1},
		{"DescAfter", audit.Query{Desc: true, After: evs[4].Seq}, -1},
		{"Action", audit.Query{Action: string(audit.LoginSucceeded)}, 9},
		{"From", audit.Query{From: evs[3].Time}, 9},
		{"Outcome", audit.Query{Outcome: audit.Success}, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows := readJSONLines(t, exportString(t, l, "acme", tt.q, audit.JSONLines))
			recs := readCSV(t, exportString(t, l, "acme", tt.q, audit.CSV))
			if len(rows) != len(recs) {
				t.Fatalf("%d JSON lines, %d CSV records", len(rows), len(recs))
			}
			at := 9
			for i, row := range rows {
				if row["id"] == audit.ExportCheckpointID {
					at = i
					if i == len(rows)-1 && i != 0 {
						at = -1
					}
				}
				if (recs[i][0] == audit.ExportCheckpointID) != (row["id"] == audit.ExportCheckpointID) {
					t.Errorf("record %d: CSV and JSON disagree", i)
				}
			}
			if at != tt.want {
				t.Fatalf("checkpoint record at %d, want %d", at, tt.want)
			}
			if at == 9 {
				return
			}
			want := []string{audit.ExportCheckpointID, "acme", fmt.Sprint(cp.Seq), cp.At.UTC().Format(time.RFC3339Nano),
				"", "", "", "", "", "", "", "", "", `{"checkpoint_mac":"` + hex.EncodeToString(cp.CheckpointMAC) + `"}`,
				"", hex.EncodeToString(cp.MAC)}
			if got := recs[(at+len(recs))%len(recs)]; !slices.Equal(got, want) {
				t.Errorf("CSV checkpoint record %q, want %q", got, want)
			}
		})
	}
}
