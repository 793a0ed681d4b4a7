package sse

import "unicode/utf8"

// appendUTF8 appends src to dst, decoded as the WHATWG Encoding standard's
// UTF-8 decoder does: every maximal subpart of an ill-formed sequence becomes
// one U+FFFD. (Go's own conversions differ: a range loop yields one U+FFFD per
// bad byte, strings.ToValidUTF8 one per run of bad bytes; for a truncated
// sequence such as "\xE2\x82a" the standard wants exactly one.)
//
// src is one line: it holds no CR or LF, and its end is treated as the end
// of the input, which is equivalent because CR and LF are never continuation
// bytes.
func appendUTF8(dst, src []byte) []byte {
	var (
		cp     rune
		needed int
		seen   int
		lower  byte = 0x80
		upper  byte = 0xBF
	)
	for i := 0; i < len(src); i++ {
		b := src[i]
		if needed == 0 {
			switch {
			case b <= 0x7F:
				dst = append(dst, b)
			case b >= 0xC2 && b <= 0xDF:
				needed, cp = 1, rune(b&0x1F)
			case b >= 0xE0 && b <= 0xEF:
				if b == 0xE0 {
					lower = 0xA0
				} else if b == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(b&0x0F)
			case b >= 0xF0 && b <= 0xF4:
				if b == 0xF0 {
					lower = 0x90
				} else if b == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(b&0x07)
			default:
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
			continue
		}
		if b < lower || b > upper {
			// The sequence so far is a maximal subpart: one U+FFFD, and b
			// is looked at again as the start of something new.
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i--
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(b&0x3F)
		seen++
		if seen == needed {
			dst = utf8.AppendRune(dst, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	return dst
}
