package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ssehub/ssehub/sse"
)

// Errors of the stream reader.
var (
	errTooLarge   = errors.New("bench: line or response header too large")
	errBadChunk   = errors.New("bench: malformed chunked encoding")
	errBadHeader  = errors.New("bench: malformed HTTP response")
	errStreamDone = errors.New("bench: stream ended (last chunk)")
)

// chunk decoder states
const (
	chunkSize  = iota // expecting a "size[;ext]\r\n" line
	chunkData         // inside a chunk's data
	chunkCRLF         // expecting the CRLF after a chunk's data
	chunkFinal        // the zero-size chunk was read
)

// streamReader reads an HTTP/1.1 response from a connection with a single
// small buffer: the status line and headers, then the body (de-chunked in
// place when chunked) split into lines ending in CR, LF or CRLF. It costs one
// buffer per connection, initially small and grown only for long lines,
// where net/http's client would hold two 4 KiB buffers and a goroutine more.
// Not safe for concurrent use.
type streamReader struct {
	rd  io.Reader
	buf []byte
	r   int // buf[r:d] is decoded body not yet returned as lines
	d   int // buf[d:w] is raw input not yet decoded
	w   int
	// lines splits buf[r:d] as package sse does: the wire format's one
	// owner, without its Decoder's second buffer and strings per event.
	lines sse.LineSplitter
	max   int

	chunked   bool
	cstate    int
	chunkLeft int64
	derr      error // from the chunk decoder, returned once lines run out
	rerr      error // from the reader, returned once lines run out
}

// reset prepares the reader for a new connection, keeping its buffer.
func (s *streamReader) reset(rd io.Reader, initial, maxLine int) {
	s.rd = rd
	if cap(s.buf) < initial {
		s.buf = make([]byte, initial)
	}
	s.buf = s.buf[:cap(s.buf)]
	s.r, s.d, s.w = 0, 0, 0
	s.lines.Reset()
	s.chunked, s.cstate, s.chunkLeft, s.derr, s.rerr = false, chunkSize, 0, nil, nil
	s.max = maxLine
}

// response is what the reader keeps of a response header.
type response struct {
	status      int
	contentType string
	chunked     bool
	length      int64  // Content-Length; -1 when absent
	close       bool   // Connection: close
	gap         string // the Ssehub-Gap header, if any
	body        string // the start of the body, for error messages
}

// readResponse reads the status line and the headers. The body that follows
// is then read with line.
func (s *streamReader) readResponse() (response, error) {
	resp := response{length: -1}
	end := -1
	for {
		if i := bytes.Index(s.buf[:s.w], []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
			break
		}
		if s.rerr != nil {
			if s.rerr == io.EOF {
				return resp, io.ErrUnexpectedEOF
			}
			return resp, s.rerr
		}
		if s.w == len(s.buf) {
			if !s.grow() {
				return resp, errTooLarge
			}
		}
		n, err := s.rd.Read(s.buf[s.w:])
		s.w += n
		if err != nil {
			s.rerr = err
		}
	}
	// A client ignores empty lines before the status line (RFC 9112,
	// 2.2): the end of a chunked body may come after its last chunk.
	head := strings.TrimLeft(string(s.buf[:end-4]), "\r\n")
	lines := strings.Split(head, "\r\n")
	// Status line: HTTP/1.1 200 OK
	proto, rest, ok := strings.Cut(lines[0], " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/") {
		return resp, fmt.Errorf("%w: status line %q", errBadHeader, lines[0])
	}
	code, _, _ := strings.Cut(rest, " ")
	st, err := strconv.Atoi(code)
	if err != nil {
		return resp, fmt.Errorf("%w: status line %q", errBadHeader, lines[0])
	}
	resp.status = st
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.EqualFold(k, "Content-Type"):
			resp.contentType = v
		case strings.EqualFold(k, "Transfer-Encoding"):
			resp.chunked = strings.Contains(strings.ToLower(v), "chunked")
		case strings.EqualFold(k, "Content-Length"):
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				resp.length = n
			}
		case strings.EqualFold(k, "Connection"):
			resp.close = strings.EqualFold(v, "close")
		case strings.EqualFold(k, "Ssehub-Gap"):
			resp.gap = v
		}
	}
	s.chunked = resp.chunked
	s.r, s.d = end, end
	s.decode()
	if resp.status != 200 {
		resp.body = string(s.buf[s.r:s.d][:min(s.d-s.r, 200)])
	}
	return resp, nil
}

// grow doubles the buffer, up to the maximum line size plus some room; it
// reports false when the buffer is already that large.
func (s *streamReader) grow() bool {
	limit := s.max + 4096
	if len(s.buf) >= limit {
		return false
	}
	nb := make([]byte, min(max(2*len(s.buf), 512), limit))
	copy(nb, s.buf[:s.w])
	s.buf = nb
	return true
}

// line returns the next line of the body without its end. The line is valid
// until the next call. At the end of the body it returns io.EOF (or the read
// error) and discards an unfinished last line.
func (s *streamReader) line() ([]byte, error) {
	for {
		line, n, ok := s.lines.Next(s.buf[s.r:s.d])
		s.r += n
		if ok {
			return line, nil
		}
		if s.d-s.r > s.max {
			return nil, errTooLarge
		}
		if s.derr != nil {
			if s.derr == errStreamDone {
				return nil, io.EOF
			}
			return nil, s.derr
		}
		if s.rerr != nil {
			return nil, s.rerr
		}
		s.fill()
	}
}

// fill reads more input, compacting or growing the buffer first.
func (s *streamReader) fill() {
	if s.r > 0 && (s.r == s.w || len(s.buf)-s.w < 128) {
		copy(s.buf, s.buf[s.r:s.w])
		s.d -= s.r
		s.w -= s.r
		s.r = 0
	}
	if len(s.buf)-s.w < 128 && !s.grow() && s.w == len(s.buf) {
		s.derr = errTooLarge
		return
	}
	n, err := s.rd.Read(s.buf[s.w:])
	s.w += n
	s.decode()
	if err != nil {
		s.rerr = err
	}
}

// decode advances s.d over the raw input, removing chunk framing in place.
func (s *streamReader) decode() {
	if !s.chunked {
		s.d = s.w
		return
	}
	for s.d < s.w && s.derr == nil {
		switch s.cstate {
		case chunkData:
			n := int(min(s.chunkLeft, int64(s.w-s.d)))
			s.d += n
			s.chunkLeft -= int64(n)
			if s.chunkLeft == 0 {
				s.cstate = chunkCRLF
			}
		case chunkCRLF:
			if s.w-s.d < 2 {
				if s.buf[s.d] != '\r' {
					s.derr = errBadChunk
				}
				return
			}
			if s.buf[s.d] != '\r' || s.buf[s.d+1] != '\n' {
				s.derr = errBadChunk
				return
			}
			s.cut(2)
			s.cstate = chunkSize
		case chunkSize:
			i := bytes.IndexByte(s.buf[s.d:s.w], '\n')
			if i < 0 {
				if s.w-s.d > 1024 {
					s.derr = errBadChunk
				}
				return
			}
			size, ok := parseChunkSize(s.buf[s.d : s.d+i])
			if !ok {
				s.derr = errBadChunk
				return
			}
			s.cut(i + 1)
			if size == 0 {
				s.cstate = chunkFinal
				s.w = s.d // trailers are ignored
				s.derr = errStreamDone
				return
			}
			s.chunkLeft = size
			s.cstate = chunkData
		case chunkFinal:
			s.w = s.d
			return
		}
	}
}

// cut removes n raw bytes at s.d.
func (s *streamReader) cut(n int) {
	copy(s.buf[s.d:], s.buf[s.d+n:s.w])
	s.w -= n
}

// parseChunkSize parses a chunk-size line (hex digits, optional extensions,
// optional CR).
func parseChunkSize(b []byte) (int64, bool) {
	b = bytes.TrimSuffix(b, []byte("\r"))
	if i := bytes.IndexByte(b, ';'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, " \t")
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}
