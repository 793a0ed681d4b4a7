package sse

import (
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds a deliberately naive second implementation of the
// standard's algorithm, written straight from its text over a whole string,
// with a UTF-8 decoder built a different way (from the Unicode Standard's
// table of well-formed byte sequences). The table tests check it against
// hand-written expectations, and FuzzDecode checks the streaming Decoder
// against it on arbitrary input.

// wellFormed is Table 3-7 of the Unicode Standard: the byte ranges of each
// well-formed UTF-8 sequence.
var wellFormed = [][][2]byte{
	{{0x00, 0x7F}},
	{{0xC2, 0xDF}, {0x80, 0xBF}},
	{{0xE0, 0xE0}, {0xA0, 0xBF}, {0x80, 0xBF}},
	{{0xE1, 0xEC}, {0x80, 0xBF}, {0x80, 0xBF}},
	{{0xED, 0xED}, {0x80, 0x9F}, {0x80, 0xBF}},
	{{0xEE, 0xEF}, {0x80, 0xBF}, {0x80, 0xBF}},
	{{0xF0, 0xF0}, {0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}},
	{{0xF1, 0xF3}, {0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}},
	{{0xF4, 0xF4}, {0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}},
}

// isPrefixOfWellFormed reports whether p starts some well-formed sequence.
func isPrefixOfWellFormed(p []byte) bool {
	for _, row := range wellFormed {
		if len(p) > len(row) {
			continue
		}
		ok := true
		for i, c := range p {
			if c < row[i][0] || c > row[i][1] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// refUTF8 decodes b replacing each maximal subpart of an ill-formed
// subsequence with U+FFFD (the W3C/WHATWG "best practice").
func refUTF8(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			sb.WriteRune(r)
			b = b[size:]
			continue
		}
		n := 1
		for k := min(len(b), 3); k > 1; k-- {
			if isPrefixOfWellFormed(b[:k]) {
				n = k
				break
			}
		}
		sb.WriteRune(utf8.RuneError)
		b = b[n:]
	}
	return sb.String()
}

// refResult is what a stream leaves behind.
type refResult struct {
	events   []Event
	lastID   string
	retry    time.Duration
	retrySet bool
}

// refDecode interprets a complete stream, starting with last event ID
// initialID.
func refDecode(in []byte, initialID string) refResult {
	s := refUTF8(in)
	s = strings.TrimPrefix(s, "\uFEFF")
	var lines []string
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break // an unterminated last line is discarded
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	res := refResult{lastID: initialID}
	var data, typ string
	hasData := false
	idBuf := initialID
	var evRetry time.Duration
	for _, line := range lines {
		if line == "" {
			res.lastID = idBuf
			if !hasData {
				data, typ, evRetry = "", "", 0
				continue
			}
			data = strings.TrimSuffix(data, "\n")
			ev := Event{ID: res.lastID, Type: "message", Data: data, Retry: evRetry}
			if typ != "" {
				ev.Type = typ
			}
			res.events = append(res.events, ev)
			data, typ, evRetry, hasData = "", "", 0, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ = value
		case "data":
			data += value + "\n"
			hasData = true
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				var ms int64
				overflow := false
				for _, c := range value {
					if ms > (1<<63-1)/int64(time.Millisecond)/10 {
						overflow = true
					}
					ms = ms*10 + int64(c-'0')
				}
				if !overflow && ms <= (1<<63-1)/int64(time.Millisecond) {
					res.retry = time.Duration(ms) * time.Millisecond
					res.retrySet = true
					evRetry = res.retry
				}
			}
		}
	}
	return res
}
