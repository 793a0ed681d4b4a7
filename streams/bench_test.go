package streams_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/streams"
)

// BenchmarkAppend measures appends of ~20-byte tokens to 256 streams with
// durable bbolt history (fsync on), 64 writers at once, through HTTP:
// the CPU cost per append of the whole path (client included).
func BenchmarkAppend(b *testing.B) {
	l, err := boltlog.Open(b.TempDir(), boltlog.Options{NoSync: os.Getenv("BENCH_NOSYNC") != ""})
	if err != nil {
		b.Fatal(err)
	}
	n := serve(b, l, streams.Config{AnonymousWrites: true})
	const streamsN = 256
	for i := range streamsN {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/stream/bench/%d", n.url, i), nil)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			b.Fatalf("create: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	c := &http.Client{Transport: tr}
	var next atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1) % streamsN
		url := fmt.Sprintf("%s/v1/stream/bench/%d", n.url, i)
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader("a token of 20 bytes."))
			req.Header.Set("Content-Type", "text/plain")
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 204 {
				b.Errorf("append: %d", resp.StatusCode)
				return
			}
		}
	})
}
