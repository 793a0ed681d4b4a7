package topic

// indexThreshold is the number of exact selectors above which a Set looks
// them up in a map instead of comparing them one by one.
const indexThreshold = 8

// Set is a compiled group of selectors, such as the topics of one
// subscription or the mercure.subscribe claim of one token. A topic matches
// the Set when it matches any of its selectors.
//
// A Set is immutable: its methods may be called from any number of
// goroutines at once. A nil *Set and an empty Set match nothing.
type Set struct {
	all   bool
	exact []string            // exact selectors, when few
	index map[string]struct{} // exact selectors, when many
	tmpl  []Selector          // templates and URL patterns
	sels  []Selector          // every distinct selector, in order
}

// NewSet returns the Set of the given selectors. Duplicates are dropped;
// zero Selectors are ignored. It may be called concurrently.
func NewSet(selectors ...Selector) *Set {
	s := &Set{}
	type key struct {
		src  string
		kind Kind
	}
	seen := make(map[key]bool, len(selectors))
	for _, sel := range selectors {
		k := key{sel.src, sel.kind}
		if sel.kind == 0 || seen[k] {
			continue
		}
		seen[k] = true
		s.sels = append(s.sels, sel)
		switch sel.kind {
		case KindAll:
			s.all = true
		case KindExact:
			s.exact = append(s.exact, sel.src)
		case KindTemplate, KindURLPattern:
			s.tmpl = append(s.tmpl, sel)
		}
	}
	if len(s.exact) > indexThreshold {
		s.index = make(map[string]struct{}, len(s.exact))
		for _, e := range s.exact {
			s.index[e] = struct{}{}
		}
		s.exact = nil
	}
	return s
}

// CompileSet compiles selectors (see Compile) into a Set, through cache
// when it is not nil. It returns the first compilation error. It may be
// called concurrently.
func CompileSet(cache *Cache, selectors ...string) (*Set, error) {
	sels := make([]Selector, 0, len(selectors))
	for _, src := range selectors {
		sel, err := cache.Compile(src)
		if err != nil {
			return nil, err
		}
		sels = append(sels, sel)
	}
	return NewSet(sels...), nil
}

// Match reports whether topic matches any selector of the Set. It does not
// allocate.
func (s *Set) Match(topic string) bool {
	if s == nil {
		return false
	}
	if s.all {
		return true
	}
	if s.index != nil {
		if _, ok := s.index[topic]; ok {
			return true
		}
	} else {
		for _, e := range s.exact {
			if e == topic {
				return true
			}
		}
	}
	for _, t := range s.tmpl {
		if t.Match(topic) {
			return true
		}
	}
	return false
}

// MatchAny reports whether any of topics matches any selector of the Set
// (an update with several topics is delivered when one of them matches).
// It does not allocate.
func (s *Set) MatchAny(topics []string) bool {
	for _, t := range topics {
		if s.Match(t) {
			return true
		}
	}
	return false
}

// MatchAll reports whether every one of topics matches a selector of the
// Set, and if not, returns the first topic that does not. It is true for an
// empty list. It does not allocate.
func (s *Set) MatchAll(topics []string) (ok bool, unmatched string) {
	for _, t := range topics {
		if !s.Match(t) {
			return false, t
		}
	}
	return true, ""
}

// MatchesAll reports whether the Set contains "*".
func (s *Set) MatchesAll() bool { return s != nil && s.all }

// Len returns the number of distinct selectors in the Set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.sels)
}

// Selectors returns a copy of the Set's distinct selectors, in the order
// they were given.
func (s *Set) Selectors() []Selector {
	if s == nil {
		return nil
	}
	return append([]Selector(nil), s.sels...)
}
