package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := histIndex(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("index(%d) = %d after %d", v, i, prev)
		}
		prev = i
		up := histUpper(i)
		if up < v {
			t.Errorf("upper(%d) = %d < %d", i, up, v)
		}
		if v >= histLinear && float64(up-v) > float64(v)/histSub {
			t.Errorf("bucket of %d too wide: upper %d", v, up)
		}
		if i > 0 && histUpper(i-1) >= v {
			t.Errorf("%d also fits bucket %d", v, i-1)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Stats() != (LatencyStats{}) {
		t.Fatal("empty histogram not zero")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 10000 {
				v := time.Duration(r.ExpFloat64() * float64(5*time.Millisecond))
				h.Record(v)
				mu.Lock()
				vals = append(vals, v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	_ = rng
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[max(0, int(float64(len(vals))*q+0.999999)-1)]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/100+1 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	s := h.Stats()
	if s.Count != 40000 || s.Max != ms(vals[len(vals)-1]) || s.Min != ms(vals[0]) {
		t.Errorf("stats %+v", s)
	}
	h.Record(-time.Second)
	if h.Stats().Min != 0 {
		t.Error("negative not recorded as zero")
	}
}

func TestSeqSet(t *testing.T) {
	var s, want seqSet
	for _, v := range []int{0, 5, 63, 64, 1000} {
		if s.add(v) {
			t.Errorf("%d already in", v)
		}
	}
	if !s.add(5) || !s.has(1000) || s.has(999) || s.has(-1) || s.has(5000) || s.len() != 5 {
		t.Error("set broken")
	}
	for v := range 70 {
		want.add(v)
	}
	// want has 0..69; s has 0 5 63 64 1000.
	if m, e := s.missingFrom(&want); m != 66 || e != 1 {
		t.Errorf("missing %d extra %d, want 66 1", m, e)
	}
	var tr topicTrack
	for _, c := range []struct {
		seq      int
		dup, ooo bool
	}{{0, false, false}, {2, false, false}, {1, false, true}, {2, true, false}, {3, false, false}, {0, true, false}} {
		if d, o := tr.receive(c.seq); d != c.dup || o != c.ooo {
			t.Errorf("receive(%d) = %v %v, want %v %v", c.seq, d, o, c.dup, c.ooo)
		}
	}
}

func TestPayload(t *testing.T) {
	p := payload{phase: phaseMain, topic: 12, seq: 345, sent: 6789 * time.Microsecond}
	b := appendPayload(nil, p, 100)
	if len(b) != 100 {
		t.Errorf("len %d", len(b))
	}
	if got, ok := parsePayload(b); !ok || got != p {
		t.Errorf("round trip: %+v %v from %q", got, ok, b)
	}
	if b := appendPayload(nil, p, 0); !strings.HasPrefix(string(b), "m 12 345 6789 ") {
		t.Errorf("small payload %q", b)
	}
	for _, bad := range []string{"", "m", "x 1 2 3 ", "m 1 2", "m a 2 3 ", "m 1 2 3x", "m  1 2 3", "m 1 2 1234567890123456789"} {
		if _, ok := parsePayload([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestReadProc(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS || s.CPU < 0 {
		t.Errorf("sample %+v", s)
	}
	if _, err := ReadProc(-5); err == nil {
		t.Error("no error for a missing process")
	}
	cpu, err := parseStatCPU([]byte("42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0"))
	if err != nil || cpu != 4*time.Second*100/time.Duration(clockTicks()) {
		t.Errorf("cpu %v %v (ticks %d)", cpu, err, clockTicks())
	}
	if _, err := parseStatCPU([]byte("42 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestConfig(t *testing.T) {
	c, err := Config{URL: "http://127.0.0.1:1/hub"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.PublishURL != c.URL || c.PublishFormat != FormatForm || c.Concurrency != 16 || c.MaxTime <= c.Duration {
		t.Errorf("defaults %+v", c)
	}
	u, _ := c.subscribeURL("bench/1")
	if u.RequestURI() != "/hub?topic=bench%2F1" {
		t.Errorf("subscribe target %q", u.RequestURI())
	}
	c.Mode, c.URL, c.PublishURL = ModePlain, "http://h/sub/{topic}?x=1", "http://h/pub?id={topic}"
	if u, _ := c.subscribeURL("a b"); u.RequestURI() != "/sub/a+b?x=1" {
		t.Errorf("plain target %q", u.RequestURI())
	}
	if p := c.publishURL("a/b"); p != "http://h/pub?id=a%2Fb" {
		t.Errorf("publish URL %q", p)
	}
	for _, bad := range []Config{
		{},
		{URL: "x", Mode: "nchan"},
		{URL: "x", Mode: ModePlain},
		{URL: "x", PublishFormat: "json"},
		{URL: "x", Subscribers: -1},
		{URL: "x", Rate: -1},
		{URL: "x", Duration: -time.Second},
		{URL: "http://h/{topic}", Mode: ModePlain, PublishURL: "p", SubscribeAll: true},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := Run(context.Background(), Config{URL: "https://127.0.0.1/hub"}); err == nil {
		t.Error("https accepted")
	}
}

func TestSourceAddrs(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	str := func(l []netip.Addr) string { return fmt.Sprint(l) }
	for _, tc := range []struct {
		spec   string
		target netip.Addr
		n      int
		want   string
	}{
		{"auto", lo, 100, "[127.0.0.2]"},
		{"auto", lo, 45000, "[127.0.0.2 127.0.0.3 127.0.0.4]"},
		{"auto", netip.MustParseAddr("10.0.0.1"), 100, "[]"},
		{"none", lo, 100, "[]"},
		{"2", lo, 100, "[127.0.0.2 127.0.0.3]"},
		{"127.0.0.9, 127.0.0.7", lo, 100, "[127.0.0.9 127.0.0.7]"},
	} {
		c := Config{SourceAddrs: tc.spec}
		got, err := c.sourceAddrs(tc.target, tc.n)
		if err != nil || str(got) != tc.want {
			t.Errorf("%q: %v %v, want %v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"1", "x.y", "300"} {
		c := Config{SourceAddrs: bad}
		if _, err := c.sourceAddrs(lo, 30000); err == nil {
			t.Errorf("%q accepted for 30000", bad)
		}
	}
}

func TestSignToken(t *testing.T) {
	tok, err := SignToken([]byte("k"), []string{"*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte("k"), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatal(err)
	}
	m := claims["mercure"].(map[string]any)
	if fmt.Sprint(m["publish"]) != "[*]" || m["subscribe"] != nil {
		t.Errorf("claims %v", claims)
	}
	if _, err := SignToken(nil, nil, nil); err == nil {
		t.Error("empty key accepted")
	}
}

func TestErrKey(t *testing.T) {
	op := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errors.New("connection reset by peer"))}
	for err, want := range map[error]string{
		op:                       "read: connection reset by peer",
		fmt.Errorf("x: %w", op):  "read: connection reset by peer",
		context.DeadlineExceeded: "timeout",
		fmt.Errorf("dial: %w", os.ErrDeadlineExceeded): "timeout",
		errors.New("status 401: bad token"):            "status 401: bad token",
	} {
		if got := errKey(err); got != want {
			t.Errorf("errKey(%v) = %q, want %q", err, got, want)
		}
	}
	var c errCounter
	for i := range 30 {
		c.add(fmt.Errorf("e%d", i))
	}
	c.add(errors.New("e0"))
	l := c.list()
	if len(l) != maxErrKinds+1 || l[0] != (ErrorCount{"other errors", 10}) || l[1] != (ErrorCount{"e0", 2}) {
		t.Errorf("list %v", l)
	}
}
