package snowemu

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Sentinel errors of the Go API. HTTP handlers map them to the reference's
// error bodies.
var (
	ErrUnknownTable = errors.New("unknown table")
	ErrNotFound     = errors.New("record not found")
	ErrUnknownUser  = errors.New("unknown user")
)

// Emulator is an in-memory ServiceNow instance. It implements http.Handler
// and is safe for concurrent use. Create it with New and release it with
// Close.
type Emulator struct {
	opts   Options
	log    *slog.Logger
	schema map[string]*tableDef
	mux    *http.ServeMux

	mu        sync.RWMutex // guards tables and passwords
	tables    map[string]*table
	passwords map[string]string // user sys_id → password

	auth authStore
	rate rateLimiter

	faultMu sync.Mutex
	faults  Faults
	faultAt time.Time // when the faults were set (429 storm duration)
	rnd     *rand.Rand

	hooks webhookDispatcher

	reqMu    sync.Mutex
	requests map[string]int

	closeOnce sync.Once
}

// New returns an emulator seeded with the admin user and, unless
// opts.NoSeed, a handful of demo users and groups. When opts.DataFile names
// an existing file its records replace the seed; a file that cannot be read
// is logged and ignored so a broken file never blocks a demo.
func New(opts Options, logger *slog.Logger) *Emulator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	e := &Emulator{
		opts:     opts,
		log:      logger,
		schema:   newSchema(),
		requests: make(map[string]int),
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	e.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	e.auth.init()
	e.rate.init()
	e.hooks.init(e)
	e.resetStore()
	if opts.DataFile != "" {
		if err := e.loadFile(opts.DataFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.Error("load data file", slog.String("path", opts.DataFile), slog.Any("error", err))
		}
	}
	e.mux = e.routes()
	return e
}

// Close stops webhook delivery (waiting for deliveries in flight) and, when
// Options.DataFile is set, saves the records there.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.hooks.close()
		if e.opts.DataFile != "" {
			if serr := e.saveFile(e.opts.DataFile); serr != nil {
				err = fmt.Errorf("save data file %s: %w", e.opts.DataFile, serr)
			}
		}
	})
	return err
}

// Reset drops every record, token, rate-limit count and request count and
// re-seeds the users and groups. Faults and webhooks are kept.
func (e *Emulator) Reset() {
	e.resetStore()
	e.auth.reset()
	e.rate.reset()
	e.reqMu.Lock()
	e.requests = make(map[string]int)
	e.reqMu.Unlock()
}

func (e *Emulator) resetStore() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tables = make(map[string]*table, len(e.schema))
	for name, def := range e.schema {
		e.tables[name] = newTable(def)
	}
	e.passwords = make(map[string]string)
	e.seedLocked()
}

func (e *Emulator) now() time.Time { return e.opts.Clock().UTC() }

// timeLayout is the wire format of date-time values (§0).
const timeLayout = "2006-01-02 15:04:05"

func (e *Emulator) nowString() string { return e.now().Format(timeLayout) }

// seedID derives a stable sys_id for seeded records so demo data keeps its
// ids across restarts.
func seedID(table, key string) string {
	sum := md5.Sum([]byte(table + ":" + key))
	return hex.EncodeToString(sum[:])
}

// UserSpec describes a user for AddUser.
type UserSpec struct {
	UserName  string
	FirstName string
	LastName  string
	Email     string
	Password  string
	// Manager is the manager's user_name, email or sys_id.
	Manager    string
	Title      string
	Department string
	Roles      []string
	// TimeZone is an IANA zone name; date helpers in queries use it (§3.3).
	TimeZone string
	Inactive bool
	Locked   bool
}

// GroupSpec describes an assignment group for AddGroup.
type GroupSpec struct {
	Name        string
	Description string
	Email       string
	// Manager and Members are user_names, emails or sys_ids.
	Manager string
	Members []string
}

func (e *Emulator) seedLocked() {
	o := e.opts
	must := func(_ string, err error) {
		if err != nil {
			panic(fmt.Sprintf("snowemu: seed: %v", err)) // static data; cannot fail
		}
	}
	must(e.addUserLocked(UserSpec{UserName: o.AdminUser, FirstName: "System", LastName: "Administrator",
		Email: "admin@example.com", Password: o.AdminPassword, Roles: []string{"admin"}}))
	if o.NoSeed {
		return
	}
	for _, u := range DemoUsers() {
		must(e.addUserLocked(u))
	}
	must(e.addGroupLocked(GroupSpec{Name: "Service Desk", Email: "servicedesk@example.com", Manager: "david.loo", Members: []string{"beth.anglin", "don.goodliffe"}}))
	must(e.addGroupLocked(GroupSpec{Name: "Cloud Security", Email: "cloudsec@example.com", Manager: "beth.anglin", Members: []string{"beth.anglin", "don.goodliffe"}}))
	must(e.addGroupLocked(GroupSpec{Name: "Network", Email: "network@example.com", Manager: "fred.luddy", Members: []string{"don.goodliffe"}}))
}

// DemoUsers returns the users New seeds besides the admin (unless
// Options.NoSeed), managers before the people they manage, each with the
// password DefaultUserPassword. Help texts list them from here.
func DemoUsers() []UserSpec {
	users := []UserSpec{
		{UserName: "fred.luddy", FirstName: "Fred", LastName: "Luddy", Email: "fred.luddy@example.com", Title: "Chief Information Officer", Department: "IT", Roles: []string{"itil"}},
		{UserName: "david.loo", FirstName: "David", LastName: "Loo", Email: "david.loo@example.com", Manager: "fred.luddy", Title: "Service Desk Manager", Department: "IT", Roles: []string{"itil", "itil_admin"}},
		{UserName: "beth.anglin", FirstName: "Beth", LastName: "Anglin", Email: "beth.anglin@example.com", Manager: "david.loo", Title: "Security Engineer", Department: "IT", Roles: []string{"itil"}},
		{UserName: "don.goodliffe", FirstName: "Don", LastName: "Goodliffe", Email: "don.goodliffe@example.com", Manager: "david.loo", Title: "Cloud Engineer", Department: "IT", Roles: []string{"itil"}},
		{UserName: "abel.tuter", FirstName: "Abel", LastName: "Tuter", Email: "abel.tuter@example.com", Manager: "fred.luddy", Title: "Application Owner", Department: "Finance"},
		{UserName: "svc.steward", FirstName: "Steward", LastName: "Integration", Email: "steward@example.com", Title: "Integration user", Roles: []string{"itil", "rest_api_explorer"}},
	}
	for i := range users {
		users[i].Password = DefaultUserPassword
	}
	return users
}

// AddUser creates an active sys_user that can authenticate with Basic auth
// or the password grant, and returns its sys_id.
func (e *Emulator) AddUser(u UserSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addUserLocked(u)
}

func (e *Emulator) addUserLocked(u UserSpec) (string, error) {
	if u.UserName == "" {
		return "", errors.New("add user: user name is required")
	}
	t := e.tables[TableUser]
	if rs, _ := t.lookup("user_name", u.UserName); len(rs) > 0 {
		return "", fmt.Errorf("add user %s: user name already exists", u.UserName)
	}
	manager := ""
	if u.Manager != "" {
		m := e.findUserLocked(u.Manager)
		if m == nil {
			return "", fmt.Errorf("add user %s: manager %s: %w", u.UserName, u.Manager, ErrUnknownUser)
		}
		manager = m.fields["sys_id"]
	}
	now := e.nowString()
	f := e.blankFields(t.def)
	id := seedID(TableUser, u.UserName)
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" {
		name = u.UserName
	}
	tz := u.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	for k, v := range map[string]string{
		"sys_id": id, "user_name": u.UserName, "first_name": u.FirstName, "last_name": u.LastName,
		"name": name, "email": u.Email, "manager": manager, "title": u.Title, "department": u.Department,
		"roles": strings.Join(u.Roles, ","), "time_zone": tz,
		"active": boolString(!u.Inactive), "locked_out": boolString(u.Locked),
		"sys_created_on": now, "sys_created_by": "system", "sys_updated_on": now, "sys_updated_by": "system",
	} {
		f[k] = v
	}
	t.add(&row{fields: f})
	e.passwords[id] = u.Password
	return id, nil
}

// AddGroup creates an active sys_user_group with its members and returns
// its sys_id.
func (e *Emulator) AddGroup(g GroupSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addGroupLocked(g)
}

func (e *Emulator) addGroupLocked(g GroupSpec) (string, error) {
	if g.Name == "" {
		return "", errors.New("add group: name is required")
	}
	t := e.tables[TableGroup]
	if rs, _ := t.lookup("name", g.Name); len(rs) > 0 {
		return "", fmt.Errorf("add group %s: name already exists", g.Name)
	}
	manager := ""
	if g.Manager != "" {
		m := e.findUserLocked(g.Manager)
		if m == nil {
			return "", fmt.Errorf("add group %s: manager %s: %w", g.Name, g.Manager, ErrUnknownUser)
		}
		manager = m.fields["sys_id"]
	}
	var members []string
	for _, ref := range g.Members {
		m := e.findUserLocked(ref)
		if m == nil {
			return "", fmt.Errorf("add group %s: member %s: %w", g.Name, ref, ErrUnknownUser)
		}
		members = append(members, m.fields["sys_id"])
	}
	now := e.nowString()
	id := seedID(TableGroup, g.Name)
	f := e.blankFields(t.def)
	for k, v := range map[string]string{
		"sys_id": id, "name": g.Name, "description": g.Description, "email": g.Email, "manager": manager,
		"sys_created_on": now, "sys_created_by": "system", "sys_updated_on": now, "sys_updated_by": "system",
	} {
		f[k] = v
	}
	t.add(&row{fields: f})
	mt := e.tables[TableGroupMember]
	for _, uid := range members {
		mf := e.blankFields(mt.def)
		for k, v := range map[string]string{
			"sys_id": seedID(TableGroupMember, id+uid), "user": uid, "group": id,
			"sys_created_on": now, "sys_created_by": "system", "sys_updated_on": now, "sys_updated_by": "system",
		} {
			mf[k] = v
		}
		mt.add(&row{fields: mf})
	}
	return id, nil
}

// findUserLocked resolves a user by sys_id, user_name or email.
func (e *Emulator) findUserLocked(ref string) *row {
	t := e.tables[TableUser]
	if r := t.byID[ref]; r != nil {
		return r
	}
	if rs, _ := t.lookup("user_name", ref); len(rs) > 0 {
		return rs[0]
	}
	if rs, _ := t.lookup("email", ref); len(rs) > 0 {
		return rs[0]
	}
	return nil
}

// blankFields returns every field of the table set to its default, so
// every record carries every field ("" when empty, §0).
func (e *Emulator) blankFields(def *tableDef) map[string]string {
	f := make(map[string]string, len(def.fields))
	for _, fd := range def.fields {
		f[fd.name] = fd.def
	}
	return f
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Count returns the number of records in table (0 for an unknown table).
func (e *Emulator) Count(tableName string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tables[tableName]
	if t == nil {
		return 0
	}
	return len(t.byID)
}

// Records returns copies of every record of table in insertion order.
func (e *Emulator) Records(tableName string) []Record {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tables[tableName]
	if t == nil {
		return nil
	}
	rs := t.rows()
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = copyFields(r.fields)
	}
	return out
}

// Record returns a copy of one record by sys_id or number.
func (e *Emulator) Record(tableName, ref string) (Record, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, r, err := e.findLocked(tableName, ref)
	if err != nil {
		return nil, err
	}
	_ = t
	return copyFields(r.fields), nil
}

// FindByCorrelationID returns copies of the records of table whose
// correlation_id equals id, in insertion order.
func (e *Emulator) FindByCorrelationID(tableName, id string) []Record {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t := e.tables[tableName]
	if t == nil {
		return nil
	}
	rs, ok := t.lookup("correlation_id", id)
	if !ok {
		return nil
	}
	var out []Record
	for _, r := range rs {
		if r.fields["correlation_id"] == id {
			out = append(out, copyFields(r.fields))
		}
	}
	return out
}

// Requests returns how many HTTP requests the emulator has received, keyed
// by "METHOD path" with sys_ids replaced by "{sys_id}", e.g.
// "POST /api/now/table/incident" or "GET /api/now/table/incident/{sys_id}".
func (e *Emulator) Requests() map[string]int {
	e.reqMu.Lock()
	defer e.reqMu.Unlock()
	out := make(map[string]int, len(e.requests))
	for k, v := range e.requests {
		out[k] = v
	}
	return out
}

// TotalRequests returns the sum of Requests.
func (e *Emulator) TotalRequests() int {
	e.reqMu.Lock()
	defer e.reqMu.Unlock()
	n := 0
	for _, v := range e.requests {
		n += v
	}
	return n
}

func (e *Emulator) countRequest(method, path string) {
	key := method + " " + normalizePath(path)
	e.reqMu.Lock()
	e.requests[key]++
	e.reqMu.Unlock()
}

// normalizePath replaces the record segment of Table API paths so request
// counts stay bounded.
func normalizePath(p string) string {
	parts := strings.Split(p, "/")
	// "", "api", "now", ["v1"|"v2",] "table", name, id
	for i, s := range parts {
		if s == "table" && i+2 < len(parts) && parts[i+2] != "" {
			parts[i+2] = "{sys_id}"
			return strings.Join(parts[:i+3], "/")
		}
	}
	return p
}

// findLocked resolves a record by sys_id or number.
func (e *Emulator) findLocked(tableName, ref string) (*table, *row, error) {
	t := e.tables[tableName]
	if t == nil {
		return nil, nil, fmt.Errorf("%s: %w", tableName, ErrUnknownTable)
	}
	if r := t.byID[ref]; r != nil {
		return t, r, nil
	}
	if rs, ok := t.lookup("number", ref); ok && len(rs) > 0 {
		return t, rs[0], nil
	}
	return t, nil, fmt.Errorf("%s %s: %w", tableName, ref, ErrNotFound)
}

// chance reports whether a random draw falls under p.
func (e *Emulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.rnd.Float64() < p
}

func (e *Emulator) randDuration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return time.Duration(e.rnd.Int64N(int64(max)))
}

// UserID returns the sys_id of the user with that user_name, email or
// sys_id.
func (e *Emulator) UserID(ref string) (string, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	r := e.findUserLocked(ref)
	if r == nil {
		return "", fmt.Errorf("user %s: %w", ref, ErrUnknownUser)
	}
	return r.fields["sys_id"], nil
}
