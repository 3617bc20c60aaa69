package notify_test

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/store"
)

const (
	base  = "https://steward.example.com"
	owner = "alex@example.com"
	vmss1 = "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1"
)

// now is a Tuesday morning of ISO week 2026-W48.
var now = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func item(id int64, due time.Time) store.NotificationItem {
	return store.NotificationItem{
		AssignmentID:       id,
		Owner:              owner,
		RecommendationKey:  "defender:f85bf3e0-d513-442e-89c3-1784ad63382b",
		RecommendationName: "System updates should be installed on your machines (powered by Update Center)",
		Severity:           steward.SeverityLow,
		ResourceID:         vmss1,
		DueDate:            due,
	}
}

func digest(items ...store.NotificationItem) notify.Digest {
	return notify.Digest{Owner: owner, Items: items, Now: now, Location: time.UTC, PublicURL: base, Period: "2026-W48"}
}

func renderDigest(t *testing.T, d notify.Digest) notify.Message {
	t.Helper()
	msg, err := notify.RenderDigest(d)
	require.NoError(t, err)
	checkMessage(t, msg)
	return msg
}

// checkMessage holds for every message: the HTML is self-contained and
// the text fits an 80-column terminal (only a link or a resource ID, which
// must stay whole to be copied, may run over).
func checkMessage(t *testing.T, msg notify.Message) {
	t.Helper()
	require.NotEmpty(t, msg.Subject)
	require.NotEmpty(t, msg.Text)
	require.NotEmpty(t, msg.HTML)
	html := strings.ToLower(msg.HTML)
	for _, tag := range regexp.MustCompile(`<[a-z!][^>]*>`).FindAllString(html, -1) {
		require.NotRegexp(t, `^<(script|img|link|iframe|object|embed|video|audio|form|input)\b|\s(src|srcset|background|on[a-z]+)=`, tag,
			"the HTML must load nothing and run nothing")
	}
	for _, banned := range []string{"@import", "url(", "@font-face"} {
		require.NotContains(t, html, banned, "the HTML must load nothing")
	}
	for _, line := range strings.Split(msg.Text, "\n") {
		n := len([]rune(line))
		if n <= 80 {
			continue
		}
		if strings.HasPrefix(line, strings.Repeat(" ", 17)+"/") {
			continue // a resource ID on its own line
		}
		f := strings.Fields(line)
		require.LessOrEqual(t, n-len([]rune(f[len(f)-1])), 80, "only an unbreakable last word may run past 80 columns: %q", line)
	}
}

// section returns the text part's group that starts with heading, up to
// the next group or the footer.
func section(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "no group %q in:\n%s", heading, text)
	rest := text[i+len(heading)+2:]
	if j := regexp.MustCompile(`\n\S.* \(\d+\)\n=+\n|\n-{20,}\n`).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	return rest
}

func TestDigestGroupsAtTheirBoundaries(t *testing.T) {
	msg := renderDigest(t, digest(
		item(1, now.Add(-time.Nanosecond)),           // overdue: due just before now
		item(2, now),                                 // due exactly now: not overdue yet
		item(3, now.Add(7*24*time.Hour-time.Second)), // the last moment of this week
		item(4, now.Add(7*24*time.Hour)),             // exactly 7 days: later
		item(5, now.Add(30*24*time.Hour)),
	))
	require.Equal(t, []string{owner}, msg.To)
	require.Equal(t, "Steward: 1 overdue, 2 due this week — your open security findings (2026-W48)", msg.Subject)
	require.Contains(t, msg.Text, "You have 5 open security findings: 1 overdue, 2 due this week and 2 later.")

	ids := func(s string) []string { return regexp.MustCompile(`/assignments/(\d+)\n`).FindAllString(s, -1) }
	require.Equal(t, []string{"/assignments/1\n"}, ids(section(t, msg.Text, "Overdue (1)")))
	require.Equal(t, []string{"/assignments/2\n", "/assignments/3\n"}, ids(section(t, msg.Text, "Due this week (2)")))
	require.Equal(t, []string{"/assignments/4\n", "/assignments/5\n"}, ids(section(t, msg.Text, "Later (2)")))
	for _, h := range []string{">Overdue<", ">Due this week<", ">Later<"} {
		require.Contains(t, msg.HTML, h)
	}

	require.Contains(t, msg.Text, "Tue 2026-11-24, overdue since today")
	require.Contains(t, msg.Text, "Tue 2026-11-24, due today")
	require.Contains(t, msg.Text, "Tue 2026-12-01, due in 7 days")
	require.Contains(t, msg.Text, "Thu 2026-12-24, due in 30 days")
}

func TestDigestOmitsEmptyGroups(t *testing.T) {
	msg := renderDigest(t, digest(item(1, now.Add(10*24*time.Hour)), item(2, now.Add(20*24*time.Hour))))
	require.Equal(t, "Steward: 2 open security findings, none due this week (2026-W48)", msg.Subject)
	require.Contains(t, msg.Text, "You have 2 open security findings: 2 later.")
	for _, s := range []string{"Overdue", "Due this week"} {
		require.NotContains(t, msg.Text, s)
		require.NotContains(t, msg.HTML, s)
	}
	require.Contains(t, msg.Text, "\nLater (2)\n")

	msg = renderDigest(t, digest(item(1, now.Add(-48*time.Hour))))
	require.Equal(t, "Steward: 1 overdue — your open security findings (2026-W48)", msg.Subject)
	require.Contains(t, msg.Text, "You have 1 open security finding: 1 overdue.")
	require.Contains(t, msg.Text, "Sun 2026-11-22, 2 days overdue")
	require.NotContains(t, msg.Text, "Later")

	msg = renderDigest(t, digest(item(1, now.Add(24*time.Hour))))
	require.Equal(t, "Steward: 1 due this week — your open security findings (2026-W48)", msg.Subject)
	require.Contains(t, msg.Text, "Wed 2026-11-25, due tomorrow")
}

func TestRenderRefusesNothingToTell(t *testing.T) {
	_, err := notify.RenderDigest(digest())
	require.Error(t, err)
	_, err = notify.RenderEscalation(notify.Escalation{Manager: "lee@example.com", Now: now, PublicURL: base, Period: "2026-W48"})
	require.Error(t, err)
}

// Dates and day counts are those of the schedule's zone, not UTC's.
func TestDigestDatesInLocation(t *testing.T) {
	due := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC) // 21:00 on the 24th in New York (UTC-5)
	d := digest(item(1, due))

	d.Location = time.UTC
	msg := renderDigest(t, d)
	require.Contains(t, msg.Text, "Wed 2026-11-25, due tomorrow")
	require.Contains(t, msg.HTML, ">Due Wed 2026-11-25<")

	d.Location = time.FixedZone("UTC-5", -5*3600)
	msg = renderDigest(t, d)
	require.Contains(t, msg.Text, "Tue 2026-11-24, due today")
	require.Contains(t, msg.HTML, ">Due Tue 2026-11-24<")

	// Overdue days count calendar days in the zone: due on the 22nd at
	// 16:00 UTC, which is the 23rd at 01:00 in Tokyo, read on the 24th.
	d = digest(item(1, time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)))
	d.Location = time.FixedZone("UTC+9", 9*3600)
	msg = renderDigest(t, d)
	require.Contains(t, msg.Text, "Mon 2026-11-23, 1 day overdue")

	// Without a zone, UTC.
	d.Location = nil
	msg = renderDigest(t, d)
	require.Contains(t, msg.Text, "Sun 2026-11-22, 2 days overdue")
}

func TestDigestLinks(t *testing.T) {
	withTicket := item(42, now.Add(-72*time.Hour))
	withTicket.RecommendationKey = "securityhub:arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.1"
	withTicket.TicketNumber, withTicket.TicketState = "TKT0010006", "In Progress"
	withTicket.TicketLink = "https://instance.service-now.com/nav_to.do?uri=incident.do?sys_id=00909613db113300ea92eb41ca961949&sysparm_view=ess"
	noTicket := item(43, now.Add(72*time.Hour))
	msg := renderDigest(t, digest(withTicket, noTicket))

	// The assignment's page and the recommendation's page in Steward
	// (internal/web: /assignments/{id}, /recommendations/{key} with the
	// key path-escaped, as the UI's own links are).
	rec := base + "/recommendations/securityhub:arn:aws:securityhub:::ruleset%2Fcis-aws-foundations-benchmark%2Fv%2F1.2.0%2Frule%2F1.1"
	require.Contains(t, msg.Text, "Assignment  "+base+"/assignments/42\n")
	require.Contains(t, msg.Text, "How to fix  "+rec+"\n")
	require.Contains(t, msg.HTML, `href="`+base+`/assignments/42"`)
	require.Contains(t, msg.HTML, `href="`+rec+`"`)

	// The ticket links to the ITSM.
	require.Contains(t, msg.Text, "Ticket      TKT0010006 (In Progress)\n                 "+withTicket.TicketLink+"\n")
	require.Contains(t, msg.HTML, `href="https://instance.service-now.com/nav_to.do?uri=incident.do?sys_id=00909613db113300ea92eb41ca961949&amp;sysparm_view=ess"`)
	require.Contains(t, msg.HTML, ">TKT0010006</a>")
	require.Contains(t, msg.HTML, "(In Progress)")
	require.Regexp(t, `Ticket      manual \(no ticket\)\n     Assignment  `+regexp.QuoteMeta(base)+`/assignments/43\n`, msg.Text)

	// Without a number yet, a ServiceNow assignment's ticket says where
	// its creation stands.
	for status, want := range map[steward.TicketStatus]string{steward.TicketPending: "being opened", steward.TicketRetrying: "being opened",
		steward.TicketDeferred: "deferred by its rule's daily cap", steward.TicketFailed: "could not be opened"} {
		pending := item(44, now.Add(72*time.Hour))
		pending.Type, pending.TicketStatus = steward.AssignmentServiceNow, status
		msg := renderDigest(t, digest(pending))
		require.Contains(t, msg.Text, "Ticket      "+want+"\n", status)
		require.Contains(t, msg.HTML, ">"+strings.ReplaceAll(want, "'", "&#39;")+"<", status)
	}

	// The owner's list, the group's "more" links' base, and Steward.
	require.Contains(t, msg.Text, "Your assignments in Steward:\n"+base+"/assignments?owner=alex%40example.com\n")
	require.Contains(t, msg.HTML, `href="`+base+`/assignments?owner=alex%40example.com"`)
	require.Contains(t, msg.Text, "Steward: "+base+"/\n")
	require.Contains(t, msg.HTML, `href="`+base+`/"`)

	// The resource: its last segment prominently, the whole ID small.
	require.Contains(t, msg.Text, "Resource    vmss1\n                 "+vmss1+"\n")
	require.Contains(t, msg.HTML, "<strong>vmss1</strong>")
	require.Contains(t, msg.HTML, ">"+vmss1+"</span>")

	// Why the owner gets it and how to stop it.
	require.Contains(t, msg.Text, "You receive this e-mail because you own open security findings in Steward")
	require.Contains(t, msg.HTML, "Do not e-mail the owner")
	require.Contains(t, msg.Text, "Do not e-mail the owner")
}

func TestDigestEscapesInHTMLAndKeepsText(t *testing.T) {
	a := item(1, now.Add(-time.Hour))
	a.RecommendationName = `<script>alert(1)</script>`
	a.TicketNumber, a.TicketLink = "INC0001", "javascript:alert(1)"
	b := item(2, now.Add(time.Hour))
	b.RecommendationName = `"><img src=x>`
	b.ResourceID = `/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/"><svg onload=alert(1)>`
	c := item(3, now.Add(time.Hour))
	c.RecommendationName = ""
	c.RecommendationKey = "prowler:azure:<k>&more"
	d := digest(a, b, c)
	d.Owner = `o'brien+"x"@example.com`
	msg := renderDigest(t, d)

	require.Contains(t, msg.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, msg.HTML, "&#34;&gt;&lt;img src=x&gt;")
	require.Contains(t, msg.HTML, "<strong>&#34;&gt;&lt;svg onload=alert(1)&gt;</strong>")
	require.Contains(t, msg.HTML, "prowler:azure:&lt;k&gt;&amp;more")
	require.Contains(t, msg.HTML, "o&#39;brien&#43;&#34;x&#34;@example.com")
	require.NotContains(t, msg.HTML, "javascript:", "an unsafe ticket link is not made a link")

	require.Contains(t, msg.Text, "<script>alert(1)</script>")
	require.Contains(t, msg.Text, `"><img src=x>`)
	require.Contains(t, msg.Text, `Resource    "><svg onload=alert(1)>`)
	require.Contains(t, msg.Text, "prowler:azure:<k>&more", "the key stands in for an empty name")
	require.Contains(t, msg.Text, `To: o'brien+"x"@example.com`)
	require.Contains(t, msg.Text, "/assignments?owner=o%27brien%2B%22x%22%40example.com")
}

func TestDigestCapsEachGroup(t *testing.T) {
	var items []store.NotificationItem
	for i := range 450 {
		items = append(items, item(int64(i+1), now.Add(-time.Duration(i+1)*time.Hour)))
	}
	for i := range 3 {
		items = append(items, item(int64(1000+i), now.Add(time.Duration(i+1)*time.Hour)))
	}
	msg := renderDigest(t, digest(items...))
	require.Equal(t, "Steward: 450 overdue, 3 due this week — your open security findings (2026-W48)", msg.Subject)

	overdue := section(t, msg.Text, "Overdue (450)")
	require.Equal(t, 200, strings.Count(overdue, "Assignment  "))
	require.Contains(t, overdue, "… and 250 more — see "+base+"/assignments?overdue=true&owner=alex%40example.com")
	require.Contains(t, overdue, "200. ")
	require.NotContains(t, overdue, "201. ")
	// The oldest come first: the 200 shown are the longest overdue.
	require.Contains(t, overdue, "/assignments/450\n")
	require.NotContains(t, overdue, "/assignments/1\n")
	week := section(t, msg.Text, "Due this week (3)")
	require.Equal(t, 3, strings.Count(week, "Assignment  "))
	require.NotContains(t, week, "more — see")

	require.Equal(t, 203, strings.Count(msg.HTML, ">Open assignment</a>"))
	require.Contains(t, msg.HTML, "… and 250 more — see <a href=\""+base+"/assignments?overdue=true&amp;owner=alex%40example.com\"")
}

func TestEscalationGroupsByOwner(t *testing.T) {
	var items []store.NotificationItem
	add := func(id int64, who string, daysLate int) {
		it := item(id, now.Add(-time.Duration(daysLate)*24*time.Hour))
		it.Owner = who
		items = append(items, it)
	}
	add(1, "carol@example.com", 1)
	add(2, "Bob@example.com", 3)
	add(3, "bob@example.com", 9)
	add(4, "dana@example.com", 2)
	add(5, "BOB@example.com", 4)
	msg, err := notify.RenderEscalation(notify.Escalation{Manager: "lee@example.com", Items: items, Now: now,
		Location: time.UTC, PublicURL: base, Period: "2026-W48"})
	require.NoError(t, err)
	checkMessage(t, msg)
	require.Equal(t, []string{"lee@example.com"}, msg.To)
	require.Equal(t, "Steward: 5 overdue findings among your reports (2026-W48)", msg.Subject)
	require.Contains(t, msg.Text, "5 security findings owned by 3 of your reports are overdue.")

	// One group per owner in any letter case, the most overdue first,
	// then by address; the heading spells the owner as the oldest item does.
	headings := regexp.MustCompile(`(?m)^(\S+@\S+) \((\d+)\)$`).FindAllString(msg.Text, -1)
	require.Equal(t, []string{"bob@example.com (3)", "carol@example.com (1)", "dana@example.com (1)"}, headings)
	bob := section(t, msg.Text, "bob@example.com (3)")
	require.Equal(t, []string{"/assignments/3\n", "/assignments/5\n", "/assignments/2\n"},
		regexp.MustCompile(`/assignments/(\d+)\n`).FindAllString(bob, -1))
	require.Contains(t, bob, "Sun 2026-11-15, 9 days overdue")
	require.Contains(t, msg.HTML, ">bob@example.com</span>")
	require.Contains(t, msg.Text, "Overdue assignments in Steward:\n"+base+"/assignments?overdue=true\n")
	require.Contains(t, msg.Text, "because Steward found you as the manager of these")

	one, err := notify.RenderEscalation(notify.Escalation{Manager: "lee@example.com", Items: items[:1], Now: now, PublicURL: base, Period: "2026-W48"})
	require.NoError(t, err)
	require.Equal(t, "Steward: 1 overdue finding among your reports (2026-W48)", one.Subject)
	require.Contains(t, one.Text, "1 security finding owned by 1 of your reports is overdue.")
}

func TestEscalationCapsEachOwner(t *testing.T) {
	var items []store.NotificationItem
	for i := range 205 {
		it := item(int64(i+1), now.Add(-time.Duration(i+1)*time.Hour))
		it.Owner = "bob@example.com"
		items = append(items, it)
	}
	msg, err := notify.RenderEscalation(notify.Escalation{Manager: "lee@example.com", Items: items, Now: now, PublicURL: base, Period: "2026-W48"})
	require.NoError(t, err)
	require.Contains(t, msg.Text, "… and 5 more — see "+base+"/assignments?overdue=true&owner=bob%40example.com")
	require.Equal(t, 200, strings.Count(msg.HTML, ">Open assignment</a>"))
}

// The same input renders the same message, whatever order the items came in.
func TestRenderIsDeterministic(t *testing.T) {
	var items []store.NotificationItem
	for i := range 40 {
		it := item(int64(i+1), now.Add(time.Duration(i%7-3)*24*time.Hour))
		it.Owner = fmt.Sprintf("owner%d@example.com", i%3)
		items = append(items, it)
	}
	first := renderDigest(t, digest(items...))
	esc := notify.Escalation{Manager: "lee@example.com", Items: items[:20], Now: now, Location: time.UTC, PublicURL: base, Period: "2026-W48"}
	firstEsc, err := notify.RenderEscalation(esc)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(items)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		require.Equal(t, first, renderDigest(t, digest(shuffled...)))
		esc.Items = slices.DeleteFunc(slices.Clone(shuffled), func(it store.NotificationItem) bool { return it.AssignmentID > 20 })
		again, err := notify.RenderEscalation(esc)
		require.NoError(t, err)
		require.Equal(t, firstEsc, again)
	}
}

// Both alternatives carry every row's facts.
func TestTextAndHTMLCarryTheSameFacts(t *testing.T) {
	a := item(7, now.Add(-50*time.Hour))
	a.Severity = steward.SeverityCritical
	a.TicketNumber, a.TicketState, a.TicketLink = "TKT0010001", "New", "https://instance.service-now.com/task.do?sys_id=f8cfe469db153300ea92eb41ca96198b"
	b := item(8, now.Add(100*time.Hour))
	b.Severity = steward.SeverityMedium
	b.RecommendationName = "Machines should be configured to periodically check for missing system updates"
	msg := renderDigest(t, digest(a, b))
	text := strings.Join(strings.Fields(msg.Text), " ") // names wrap in the text
	for _, fact := range []string{"Critical", "Medium", a.RecommendationName, b.RecommendationName, "vmss1", vmss1,
		"Sun 2026-11-22", "2 days overdue", "Sat 2026-11-28", "due in 4 days", "TKT0010001", "New",
		base + "/assignments/7", base + "/assignments/8", owner, "2026-W48"} {
		require.Contains(t, text, fact)
		require.Contains(t, msg.HTML, fact)
	}
	require.Contains(t, msg.Text, a.TicketLink)
	require.Contains(t, msg.HTML, `href="`+a.TicketLink+`"`)
}

func TestRenderTest(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 30, 5, 0, time.FixedZone("CET", 3600))
	msg := notify.RenderTest("ops@example.com", base+"/", at)
	checkMessage(t, msg)
	require.Equal(t, []string{"ops@example.com"}, msg.To)
	require.Equal(t, "Steward: test message", msg.Subject)
	for _, part := range []string{msg.Text, msg.HTML} {
		require.Contains(t, part, "steward notify test")
		require.Contains(t, part, "2026-11-24 08:30:05 UTC")
		require.Contains(t, part, base+"/")
		require.Contains(t, part, "ops@example.com")
		require.NotContains(t, part, base+"//")
	}
	require.Contains(t, msg.HTML, `href="`+base+`/"`)
}
