package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/rules"
	"github.com/stewardhq/steward/internal/store"
)

// Governance rules. A rule is addressed by its ID or its name
// (/api/v1/rules/{id}); names are never all digits. A scope-limited caller
// sees and changes only rules whose scope lies inside its own.

func (a *API) visibleRules(r *http.Request) ([]*steward.Rule, error) {
	all, err := a.db.FindRules(r.Context())
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, rule := range all {
		if scopeWithin(r, rule.Scope) {
			out = append(out, rule)
		}
	}
	return out, nil
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	all, err := a.visibleRules(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(all, ""))
	return nil
}

// findRule answers 404 for a rule outside the caller's scope.
func (a *API) findRule(r *http.Request) (*steward.Rule, error) {
	ref := r.PathValue("id")
	rule, err := a.db.FindRule(r.Context(), ref)
	if err != nil {
		return nil, err
	}
	if !scopeWithin(r, rule.Scope) {
		return nil, notFound("rule %q not found", ref)
	}
	return rule, nil
}

func (a *API) getRule(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	rule, err := a.findRule(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

// ruleInScope refuses a rule a scope-limited caller may not make.
func ruleInScope(r *http.Request, rule *steward.Rule) error {
	if !scopeWithin(r, rule.Scope) {
		return steward.Errorf(steward.CodeForbidden, "rule %q: scope %s is not inside this token's scope %s", rule.Name, rule.Scope, callerScope(r))
	}
	return nil
}

func (a *API) createRule(w http.ResponseWriter, r *http.Request) error {
	var doc rules.RuleDoc
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &doc); err != nil {
		return err
	}
	rule := doc.Rule()
	if err := ruleInScope(r, rule); err != nil {
		return err
	}
	if err := a.db.WithTx(r.Context(), func(tx *store.Tx) error { return tx.CreateRule(r.Context(), rule, actor(r)) }); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/rules/"+itoa(rule.ID))
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

func (a *API) saveRule(w http.ResponseWriter, r *http.Request, cur *steward.Rule, doc rules.RuleDoc) error {
	rule := doc.Rule()
	if err := ruleInScope(r, rule); err != nil {
		return err
	}
	if err := a.db.WithTx(r.Context(), func(tx *store.Tx) error { return tx.UpdateRule(r.Context(), cur.ID, rule, actor(r)) }); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

// putRule replaces the rule with the body.
func (a *API) putRule(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.findRule(r)
	if err != nil {
		return err
	}
	var doc rules.RuleDoc
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &doc); err != nil {
		return err
	}
	return a.saveRule(w, r, cur, doc)
}

// patchRule replaces the fields the body names; an object field (owner,
// ticket) is replaced whole, and "ticket": null removes the ticket part.
func (a *API) patchRule(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.findRule(r)
	if err != nil {
		return err
	}
	var patch map[string]json.RawMessage
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &patch); err != nil {
		return err
	}
	doc := rules.DocOf(cur)
	// Each field is decoded onto a zeroed copy of its own value, so an
	// object is replaced, not merged.
	for key, raw := range patch {
		one, err := json.Marshal(map[string]json.RawMessage{key: raw})
		if err != nil {
			return err
		}
		var fresh rules.RuleDoc
		if err := decodeStrict(one, &fresh); err != nil {
			return err
		}
		if err := setDocField(&doc, &fresh, key); err != nil {
			return err
		}
	}
	return a.saveRule(w, r, cur, doc)
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	return nil
}

func setDocField(doc, from *rules.RuleDoc, key string) error {
	switch key {
	case "name":
		doc.Name = from.Name
	case "description":
		doc.Description = from.Description
	case "priority":
		doc.Priority = from.Priority
	case "enabled":
		doc.Enabled = from.Enabled
	case "scope":
		doc.Scope = from.Scope
	case "exclude":
		doc.Exclude = from.Exclude
	case "when":
		doc.When = from.When
	case "owner":
		doc.Owner = from.Owner
	case "due_in_days":
		doc.DueInDays = from.DueInDays
	case "grace_period":
		doc.GracePeriod = from.GracePeriod
	case "owner_email_opt_out":
		doc.OwnerEmailOptOut = from.OwnerEmailOptOut
	case "manager_email_opt_out":
		doc.ManagerEmailOptOut = from.ManagerEmailOptOut
	case "ticket":
		doc.Ticket = from.Ticket
	default:
		return invalid("unknown field %q", key)
	}
	return nil
}

func (a *API) deleteRule(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.findRule(r)
	if err != nil {
		return err
	}
	var gone *steward.Rule
	err = a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		var err error
		gone, err = tx.DeleteRule(r.Context(), cur.ID, actor(r))
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gone)
	return nil
}

// rulesPlan reads a desired set of rules (JSON, or a rules file as YAML)
// and plans it against the caller's visible rules.
func (a *API) rulesPlan(w http.ResponseWriter, r *http.Request) (*rules.Plan, error) {
	q := newQuery(r, "partial")
	partial := q.boolParam("partial")
	if q.err != nil {
		return nil, q.err
	}
	if err := requireContentType(r, "application/json", "application/yaml"); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		return nil, bodyError(err)
	}
	var doc *rules.Doc
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/yaml" {
		doc, err = rules.ParseYAML(body)
	} else {
		doc, err = rules.ParseJSON(body)
	}
	if err != nil {
		return nil, err
	}
	desired, err := doc.Desired()
	if err != nil {
		return nil, err
	}
	for _, rule := range desired {
		if err := ruleInScope(r, rule); err != nil {
			return nil, err
		}
	}
	current, err := a.visibleRules(r)
	if err != nil {
		return nil, err
	}
	return rules.MakePlan(r.Context(), a.db, current, desired, rules.PlanOptions{Partial: partial, Scope: callerScope(r)})
}

func (a *API) planRules(w http.ResponseWriter, r *http.Request) error {
	plan, err := a.rulesPlan(w, r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, plan)
	return nil
}

func (a *API) applyRules(w http.ResponseWriter, r *http.Request) error {
	plan, err := a.rulesPlan(w, r)
	if err != nil {
		return err
	}
	if err := plan.Apply(r.Context(), a.db, actor(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, plan)
	return nil
}

func (a *API) listScopeTags(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	all, err := a.db.FindScopeTags(r.Context())
	if err != nil {
		return err
	}
	out := all[:0]
	for _, st := range all {
		if scopeWithin(r, st.Scope) {
			out = append(out, st)
		}
	}
	writeJSON(w, http.StatusOK, newList(out, ""))
	return nil
}

// scopeTagsInput is the body of PUT /api/v1/scope-tags: the scope's tags,
// replacing any it had (none removes them).
type scopeTagsInput struct {
	Scope steward.Scope     `json:"scope"`
	Tags  map[string]string `json:"tags"`
}

func (a *API) putScopeTags(w http.ResponseWriter, r *http.Request) error {
	var in scopeTagsInput
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	if in.Scope != "" && !scopeWithin(r, in.Scope) {
		return steward.Errorf(steward.CodeForbidden, "scope %s is not inside this token's scope %s", in.Scope, callerScope(r))
	}
	var st *steward.ScopeTags
	err := a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		var err error
		st, err = tx.SetScopeTags(r.Context(), in.Scope, in.Tags, actor(r))
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// runRuleBody is what POST /api/v1/rules/{id}/run takes.
type runRuleBody struct {
	Override bool `json:"override"`
	DryRun   bool `json:"dry_run"`
}

// runRule runs a rule over the assessments that exist: a dry run answers
// its counts at once and writes nothing; otherwise the run is recorded and
// its job queued in one transaction, and the answer (202) is the queued
// run, whose URL shows its progress.
func (a *API) runRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.findRule(r)
	if err != nil {
		return err
	}
	var body runRuleBody
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &body); err != nil {
		return err
	}
	run := &store.RuleRun{RuleID: rule.ID, RuleName: rule.Name, Override: body.Override, RequestedBy: actor(r)}
	if body.DryRun {
		run.DryRun, run.CreatedAt = true, a.now()
		// A dry run creates nothing: no assignment service is needed.
		if err := rules.NewEvaluator(a.db, nil, a.logger).Run(r.Context(), rule, run, true); err != nil {
			return err
		}
		run.State = store.RuleRunSucceeded
		writeJSON(w, http.StatusOK, run)
		return nil
	}
	err = a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		if err := tx.CreateRuleRun(r.Context(), run); err != nil {
			return err
		}
		return a.queue.InsertTx(r.Context(), tx.SQL(), jobs.RuleRunArgs{RunID: run.ID})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/rules/"+itoa(rule.ID)+"/runs/"+itoa(run.ID))
	writeJSON(w, http.StatusAccepted, run)
	return nil
}

// listRuleRuns lists the latest runs of a rule, newest first (at most
// limit, default 50).
func (a *API) listRuleRuns(w http.ResponseWriter, r *http.Request) error {
	limit, err := latestRunsLimit(r)
	if err != nil {
		return err
	}
	rule, err := a.findRule(r)
	if err != nil {
		return err
	}
	runs, err := a.db.FindRuleRuns(r.Context(), rule.ID, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(runs, ""))
	return nil
}

// getRuleRun shows one run of a rule: its state and counts so far.
func (a *API) getRuleRun(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	rule, err := a.findRule(r)
	if err != nil {
		return err
	}
	id, perr := strconv.ParseInt(r.PathValue("run"), 10, 64)
	if perr != nil {
		return notFound("run %q of rule %q not found", r.PathValue("run"), rule.Name)
	}
	run, err := a.db.FindRuleRun(r.Context(), rule.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}
