package compose

import (
	"io"
	"runtime"
	"testing"
)

// A genReader returns n pseudo-random octets, repeating a 64 KiB block. It
// is not an io.Seeker or io.WriterTo, so the composer can only stream it;
// every 4 MiB it calls sample, so a test can watch the heap while the
// attachment is being written, not only at the end.
type genReader struct {
	left, read int64
	sample     func()
}

var genBlock = func() []byte {
	b := make([]byte, 64<<10)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}()

const sampleEvery = 4 << 20

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	off := int(g.read % int64(len(genBlock)))
	n := copy(p[:min(int64(len(p)), g.left)], genBlock[off:])
	before := g.read / sampleEvery
	g.left -= int64(n)
	g.read += int64(n)
	if g.sample != nil && g.read/sampleEvery != before {
		g.sample()
	}
	return n, nil
}

// TestWriteToStreamsAttachment composes a message with a large attachment
// from a generating reader into io.Discard and checks that the heap never
// grows by as much as 8 MiB: the attachment is encoded as it is copied,
// never held.
func TestWriteToStreamsAttachment(t *testing.T) {
	size := int64(96 << 20)
	if testing.Short() || raceEnabled {
		size = 64 << 20
	}
	var base, peak runtime.MemStats
	peakHeap := uint64(0)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapAlloc)
	}
	m := validMessage()
	m.Attachments = []Attachment{{
		Filename: "big.bin",
		Content:  &genReader{left: size, sample: sample},
		Size:     size,
	}}
	est, ok := m.EstimatedSize()
	if !ok {
		t.Fatal("EstimatedSize: ok = false")
	}
	runtime.GC()
	runtime.ReadMemStats(&base)
	n, err := m.WriteTo(io.Discard)
	runtime.ReadMemStats(&peak)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	sample()
	growth := int64(peakHeap) - int64(base.HeapAlloc)
	t.Logf("attachment %d MiB, wrote %d octets: peak heap growth %.2f MiB (HeapAlloc %d -> peak %d), total allocated %.2f MiB in %d allocations",
		size>>20, n, float64(growth)/(1<<20), base.HeapAlloc, peakHeap,
		float64(peak.TotalAlloc-base.TotalAlloc)/(1<<20), peak.Mallocs-base.Mallocs)
	if growth >= 8<<20 {
		t.Errorf("heap grew by %.1f MiB while streaming a %d MiB attachment, want < 8 MiB", float64(growth)/(1<<20), size>>20)
	}
	if n != est {
		t.Errorf("WriteTo wrote %d octets, EstimatedSize said %d", n, est)
	}
}

// BenchmarkWriteToAttachment measures composing a message with a 16 MiB
// attachment; the throughput is of attachment octets.
func BenchmarkWriteToAttachment(b *testing.B) {
	const size = 16 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		m := validMessage()
		m.Attachments = []Attachment{{Filename: "big.bin", Content: &genReader{left: size}}}
		if _, err := m.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteToText measures composing a text and HTML message of
// 64 KiB each.
func BenchmarkWriteToText(b *testing.B) {
	chunk := string(benchChunks()["lf"])
	b.SetBytes(int64(2 * len(chunk)))
	b.ReportAllocs()
	m := validMessage()
	m.Text, m.HTML = chunk, chunk
	for b.Loop() {
		if _, err := m.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
