package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/servicetest"
)

// The Durable Streams protocol's own conformance suite
// (@durable-streams/server-conformance-tests, run by vitest from
// streams/conformance, installed there by scripts/test.sh) against the
// real binary with durable bbolt history: every test must pass (the suite
// skips a few itself).
func TestDurableStreamsConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite takes about a minute")
	}
	dir, err := filepath.Abs("../../streams/conformance")
	if err != nil {
		t.Fatal(err)
	}
	npx, err := exec.LookPath("npx")
	if err != nil {
		servicetest.Unavailable(t, "npx (Node.js) is not installed: "+err.Error())
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@durable-streams", "server-conformance-tests")); err != nil {
		servicetest.Unavailable(t, "the conformance suite is not installed: run (cd streams/conformance && npm ci), as scripts/test.sh does")
	}
	t.Parallel()
	h := startHub(t, t.TempDir(), "--anonymous-writes", "--history", "bolt", "--log-level", "warn")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npx, "vitest", "run", "--reporter=dot", "--no-color")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DS_BASE_URL="+h.base, "NO_COLOR=1", "CI=true")
	out, err := cmd.CombinedOutput()
	summary := regexp.MustCompile(`Tests\s+[^\n]*`).Find(out)
	t.Logf("conformance suite: %s", summary)
	if err != nil {
		t.Fatalf("the conformance suite failed (%v):\n%s", err, tail(out, 20000))
	}
	if log := h.stderr.String(); regexp.MustCompile(`DATA RACE|panic:`).MatchString(log) {
		t.Fatalf("the hub (built with -race) reported a race or a panic under the suite:\n%s", log)
	}
	if !regexp.MustCompile(`Tests\s+\d+ passed`).Match(out) || regexp.MustCompile(`\d+ failed`).Match(summary) {
		t.Fatalf("the conformance suite did not report every test passed:\n%s", tail(out, 20000))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
