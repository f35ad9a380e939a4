package audit_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// trimEvery is how often the benchmarks cut the in-memory chain back to a
// checkpoint, so that memory stays bounded however large b.N grows.
const trimEvery = 1 << 14

// trim purges everything the store holds for tenant (store-level, without
// the Log's verification walk) to keep the benchmark's memory bounded. A
// concurrent trim that got further first is not an error.
func trim(b *testing.B, s *memstore.Audit, tenant string) {
	ctx := context.Background()
	head, err := s.Head(ctx, tenant)
	if err == nil {
		err = s.Purge(ctx, tenant, audit.Checkpoint{Seq: head.Seq, MAC: head.MAC})
	}
	if err != nil && !errors.Is(err, audit.ErrConflict) {
		b.Error(err)
	}
}

func reportEventsPerSecond(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}

// BenchmarkRecord measures one goroutine recording one event at a time
// into memstore: validation, ID, MAC and one Store.Append per event.
func BenchmarkRecord(b *testing.B) {
	s := memstore.NewAudit()
	l := newLog(b, s)
	ctx := context.Background()
	e := loginEvent("acme")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
		if i%trimEvery == trimEvery-1 {
			trim(b, s, "acme")
		}
	}
	reportEventsPerSecond(b)
}

// BenchmarkRecordParallel measures many goroutines recording into one
// tenant, where group commit batches them into fewer Store.Appends.
func BenchmarkRecordParallel(b *testing.B) {
	s := memstore.NewAudit()
	l := newLog(b, s)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := loginEvent("acme")
		for pb.Next() {
			if _, err := l.Record(ctx, e); err != nil {
				b.Error(err)
				return
			}
			if n.Add(1)%trimEvery == 0 {
				trim(b, s, "acme")
			}
		}
	})
	reportEventsPerSecond(b)
}

// BenchmarkVerify measures verifying a chain of 10,000 events.
func BenchmarkVerify(b *testing.B) {
	l := newLog(b, memstore.NewAudit(), func(c *audit.Config) { c.MaxBatch = 1000 })
	const n = 10000
	ctx := context.Background()
	recordN(b, l, "acme", n)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rep, err := l.Verify(ctx, "acme")
		if err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)*n/s, "events/s")
	}
}

// BenchmarkExport measures exporting 10,000 events in each format.
func BenchmarkExport(b *testing.B) {
	l := newLog(b, memstore.NewAudit())
	const n = 10000
	ctx := context.Background()
	recordN(b, l, "acme", n)
	for _, f := range []struct {
		name string
		f    audit.Format
	}{{"JSONLines", audit.JSONLines}, {"CSV", audit.CSV}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := l.Export(ctx, "acme", audit.Query{}, io.Discard, f.f); err != nil {
					b.Fatal(err)
				}
			}
			if s := b.Elapsed().Seconds(); s > 0 {
				b.ReportMetric(float64(b.N)*n/s, "events/s")
			}
		})
	}
}

// BenchmarkRecordParallelSlowStore is BenchmarkRecordParallel against a store
// whose Append takes 200µs, like a database round trip: group commit keeps
// throughput far above the 5,000 events/s of one Append per event.
func BenchmarkRecordParallelSlowStore(b *testing.B) {
	s := memstore.NewAudit()
	slow := &hookStore{Store: s, onAppend: func(context.Context, int64, []audit.Event) error {
		time.Sleep(200 * time.Microsecond)
		return nil
	}}
	l := newLog(b, slow)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := loginEvent("acme")
		for pb.Next() {
			if _, err := l.Record(ctx, e); err != nil {
				b.Error(err)
				return
			}
			if n.Add(1)%trimEvery == 0 {
				trim(b, s, "acme")
			}
		}
	})
	reportEventsPerSecond(b)
	if a := slow.appends.Load(); a > 0 {
		b.ReportMetric(float64(b.N)/float64(a), "events/append")
	}
}
