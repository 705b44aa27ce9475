package bench

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// AttachmentSize is the size of the attachment of case 2: 100 MB, or
// EMAILCONN_BENCH_ATTACHMENT_MB megabytes (CI uses a small one).
func AttachmentSize() int64 {
	if v := os.Getenv("EMAILCONN_BENCH_ATTACHMENT_MB"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return n << 20
		}
	}
	return 100 << 20
}

// heapSampler records the largest heap (live and not yet swept objects,
// what MemStats.HeapAlloc reports) seen every 2 ms. It reads
// runtime/metrics, which unlike runtime.ReadMemStats does not stop the
// world, so sampling does not slow the send it measures.
type heapSampler struct {
	base, peak atomic.Uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapBytes(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startHeapSampler collects garbage, takes the baseline and starts
// sampling.
func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{})}
	s := []metrics.Sample{{Name: heapMetric}}
	h.base.Store(heapBytes(s))
	h.peak.Store(h.base.Load())
	h.done.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if v := heapBytes(s); v > h.peak.Load() {
					h.peak.Store(v)
				}
			}
		}
	})
	return h
}

// growthMB stops sampling and returns the peak growth over the baseline.
func (h *heapSampler) growthMB() float64 {
	close(h.stop)
	h.done.Wait()
	if v := heapBytes([]metrics.Sample{{Name: heapMetric}}); v > h.peak.Load() {
		h.peak.Store(v)
	}
	return float64(h.peak.Load()-h.base.Load()) / (1 << 20)
}

// AttachmentBench returns the benchmark of case 2 for "emailconn" or
// "gosmtp": one message per iteration with an attachment of
// AttachmentSize bytes read from a non-seekable reader, to the plaintext
// sink, over a session opened before the timing. It reports MB/s of
// attachment and peak-heap-MB, the largest heap growth seen during the
// sends.
func AttachmentBench(lib string) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := Setup()
		if err != nil {
			b.Fatal(err)
		}
		size := AttachmentSize()
		var send func() error
		switch lib {
		case "emailconn":
			s, err := NewEmailconnSender(e, false)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			// Open the session outside the timing.
			if _, err := s.Send(ctx, &emailconn.Message{To: []string{To}, Text: "warm-up"}); err != nil {
				b.Fatal(err)
			}
			send = func() error {
				_, err := s.Send(ctx, &emailconn.Message{To: []string{To}, Subject: "Workunit 4711 log",
					Text: "The log is attached.", Attachments: []emailconn.Attachment{
						{Filename: "workunit.log", ContentType: "application/octet-stream", Content: newGenerator(size)}}})
				return err
			}
		case "gosmtp":
			c, err := dialGoSMTP(e, false, e.Plain.Addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Quit()
			send = func() error {
				if err := c.Mail(From, nil); err != nil {
					return err
				}
				if err := c.Rcpt(To, nil); err != nil {
					return err
				}
				w, err := c.Data()
				if err != nil {
					return err
				}
				if err := writeAttachmentMessage(w, newGenerator(size)); err != nil {
					return err
				}
				return w.Close()
			}
		default:
			b.Fatalf("unknown library %q", lib)
		}
		before := e.Plain.Bytes.Load()
		b.SetBytes(size)
		b.ReportAllocs()
		h := startHeapSampler()
		b.ResetTimer()
		cpu0 := cpuTime()
		for range b.N {
			if err := send(); err != nil {
				b.Fatalf("%s: %v", lib, err)
			}
		}
		cpu := cpuTime() - cpu0
		growth := h.growthMB()
		b.StopTimer()
		if got, min := e.Plain.Bytes.Load()-before, int64(b.N)*size*4/3; got < min {
			b.Fatalf("%s: the sink received %d bytes, want at least %d", lib, got, min)
		}
		b.ReportMetric(growth, "peak-heap-MB")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*int(size>>20)), "cpu-µs/MB")
	}
}
