package steward

import "strings"

// Scope is a prefix of resource IDs such as "/subscriptions/<id>",
// "/aws/accounts/<acct>" or "/gcp/projects/<p>". The empty scope and "/"
// contain every resource.
type Scope string

// Contains reports whether resourceID lies inside the scope. Matching is
// segment-wise and case-insensitive: "/subscriptions/s1" contains
// "/SUBSCRIPTIONS/S1/resourceGroups/rg" but not "/subscriptions/s10", because
// Azure resource IDs are case-insensitive and a bare string prefix would leak
// across sibling subscriptions.
func (s Scope) Contains(resourceID string) bool {
	scope := segments(string(s))
	res := segments(resourceID)
	if len(scope) > len(res) {
		return false
	}
	for i, seg := range scope {
		if !strings.EqualFold(seg, res[i]) {
			return false
		}
	}
	return true
}

// Normalize returns the canonical spelling of the scope: lowercase, one
// leading slash, no trailing or doubled slashes. Stored scopes are
// normalized so equal scopes compare equal.
func (s Scope) Normalize() Scope {
	segs := segments(string(s))
	if len(segs) == 0 {
		return "/"
	}
	return Scope("/" + strings.ToLower(strings.Join(segs, "/")))
}

// Validate reports whether the scope is well formed.
func (s Scope) Validate() error {
	if strings.ContainsAny(string(s), "\x00\r\n\t") {
		return Errorf(CodeInvalid, "scope %q contains control characters", string(s))
	}
	if len(s) > 1024 {
		return Errorf(CodeInvalid, "scope is longer than 1024 characters")
	}
	return nil
}

// NormalizeResourceID returns the key under which a resource ID is stored and
// matched: lowercase with no trailing slash, so IDs that differ only in case
// (as Azure's do between APIs) name one resource.
func NormalizeResourceID(id string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(id), "/"))
}

func segments(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, part := range parts {
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}
