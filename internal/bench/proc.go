package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcSample is a process's memory and CPU time, read from /proc (Linux).
type ProcSample struct {
	RSS     int64         // resident set size, bytes (VmRSS)
	PeakRSS int64         // peak resident set size, bytes (VmHWM)
	CPU     time.Duration // user plus system CPU time of every thread
}

// ReadProc reads the RSS and CPU time of process pid ("self" is pid 0)
// from /proc/<pid>/status and /proc/<pid>/stat.
// It may be called from any goroutine.
func ReadProc(pid int) (ProcSample, error) {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var s ProcSample
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("bench: reading the process's memory: %w", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return s, fmt.Errorf("bench: unexpected %s line in %s/status: %q", k, dir, l)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, fmt.Errorf("bench: unexpected %s line in %s/status: %q", k, dir, l)
		}
		if k == "VmRSS" {
			s.RSS = n << 10
		} else {
			s.PeakRSS = n << 10
		}
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("bench: reading the process's CPU time: %w", err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return s, fmt.Errorf("bench: %s/stat: %w", dir, err)
	}
	s.CPU = cpu
	return s, nil
}

// parseStatCPU returns utime+stime from the contents of /proc/<pid>/stat.
func parseStatCPU(stat []byte) (time.Duration, error) {
	// The command name, field 2, is in parentheses and may contain spaces
	// and parentheses: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed utime or stime")
	}
	tck := clockTicks()
	return time.Duration(ut+st) * time.Second / time.Duration(tck), nil
}

// clockTicks returns the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), read from
// the auxiliary vector (AT_CLKTCK), or 100, its value on every common
// Linux platform.
func clockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	const atClkTck = 17
	word := strconv.IntSize / 8
	for len(b) >= 2*word {
		var k, v uint64
		if word == 8 {
			k, v = binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
		} else {
			k, v = uint64(binary.NativeEndian.Uint32(b)), uint64(binary.NativeEndian.Uint32(b[4:]))
		}
		if k == atClkTck && v > 0 {
			return int64(v)
		}
		if k == 0 {
			break
		}
		b = b[2*word:]
	}
	return 100
}
