package snowemu

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimitRule is one sys_rate_limit_rules record (§7.1): a request limit
// per user per hour for Table API calls matching Method and Table. Exactly
// one of User, Role or neither (all users) selects who it applies to.
type RateLimitRule struct {
	// ID is the rule's sys_id, sent in X-RateLimit-Rule; generated when empty.
	ID string `json:"sys_id"`
	// Method ("GET", "POST", ...) and Table restrict the rule; empty matches any.
	Method string `json:"method"`
	Table  string `json:"table"`
	// User is a user_name (single-user rule); Role a role name (role rule).
	// Both empty: the rule applies to all users.
	User string `json:"user"`
	Role string `json:"role"`
	// Limit is the number of requests allowed per user per hour.
	Limit int `json:"limit"`
}

type rateLimiter struct {
	mu     sync.Mutex
	rules  []RateLimitRule
	counts map[string]int // rule|user|window → requests
}

func (l *rateLimiter) init() { l.counts = make(map[string]int) }

func (l *rateLimiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts = make(map[string]int)
}

// SetRateLimits replaces the rate-limit rules and clears the counts. An
// empty list disables rate limiting (the base system has no Table API
// rules, §7.1).
func (e *Emulator) SetRateLimits(rules []RateLimitRule) {
	rules = slices.Clone(rules)
	for i := range rules {
		if rules[i].ID == "" {
			rules[i].ID = newSysID()
		}
	}
	e.rate.mu.Lock()
	defer e.rate.mu.Unlock()
	e.rate.rules = rules
	e.rate.counts = make(map[string]int)
}

// RateLimits returns the current rules.
func (e *Emulator) RateLimits() []RateLimitRule {
	e.rate.mu.Lock()
	defer e.rate.mu.Unlock()
	return slices.Clone(e.rate.rules)
}

// pickRule applies the precedence of §7.1: single-user rule, then role rules
// (lowest limit wins), then all-users rules.
func pickRule(rules []RateLimitRule, a *actor, method, tableName string) *RateLimitRule {
	var user, role, all *RateLimitRule
	lower := func(cur *RateLimitRule, r *RateLimitRule) *RateLimitRule {
		if cur == nil || r.Limit < cur.Limit {
			return r
		}
		return cur
	}
	for i := range rules {
		r := &rules[i]
		if (r.Method != "" && !strings.EqualFold(r.Method, method)) || (r.Table != "" && r.Table != tableName) {
			continue
		}
		switch {
		case r.User != "":
			if strings.EqualFold(r.User, a.userName) {
				user = lower(user, r)
			}
		case r.Role != "":
			if slices.Contains(a.roles, r.Role) {
				role = lower(role, r)
			}
		default:
			all = lower(all, r)
		}
	}
	switch {
	case user != nil:
		return user
	case role != nil:
		return role
	}
	return all
}

// rateCheck counts the request against the matching rule, sets the rate
// limit headers and answers 429 when the hour's budget is spent. It reports
// whether the request may proceed.
func (e *Emulator) rateCheck(w http.ResponseWriter, r *http.Request, a *actor, method, tableName string) bool {
	now := e.now()
	e.rate.mu.Lock()
	rule := pickRule(e.rate.rules, a, method, tableName)
	if rule == nil {
		e.rate.mu.Unlock()
		return true
	}
	window := now.Truncate(time.Hour)
	reset := window.Add(time.Hour)
	key := rule.ID + "|" + a.sysID + "|" + strconv.FormatInt(window.Unix(), 10)
	used := e.rate.counts[key]
	allowed := used < rule.Limit
	if allowed {
		used++
		e.rate.counts[key] = used
	}
	limit, id := rule.Limit, rule.ID
	e.rate.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Rule", id)
	if e.opts.RateLimitRemainingHeader {
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-used, 0)))
	}
	if allowed {
		return true
	}
	retry := int((reset.Sub(now) + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.Itoa(max(retry, 1)))
	e.writeError(w, r, errBody(http.StatusTooManyRequests, "Rate limit exceeded",
		fmt.Sprintf("Rate limit of %d requests per hour for Table API exceeded", limit)))
	return false
}
