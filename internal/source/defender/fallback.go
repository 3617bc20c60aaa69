package defender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/security/armsecurity"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
)

// The Azure Resource Manager API version for subscriptions and resource groups.
const armResourcesVersion = "2022-12-01"

// fallbackUnit reads one subscription through the Microsoft.Security
// assessments API (armsecurity): the recommendations' metadata of the
// subscription, then its assessments, page by page, and the subscription's
// and resource groups' tags through ARM. The assessments API carries no
// resource tags; docs/sources.md says so.
func (r *run) fallbackUnit(ctx context.Context, u pull.Unit) error {
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pe, ok := errors.AsType[*pageError](err); ok {
			what = fmt.Sprintf("%s, page %d", pe.what, pe.page)
		}
		se, stop := requestError(err, what)
		r.failed(ctx, u, se)
		if stop {
			return se
		}
		return nil
	}

	// Tags of the subscription and its resource groups.
	if err := r.p.armTags(ctx, u, r.sink); err != nil {
		if _, ok := errors.AsType[*sinkError](err); ok {
			return errors.Unwrap(err)
		}
		return fail("the tags of subscription "+u.ID+" and its resource groups", err)
	}

	// The recommendations' metadata (severity, description, remediation).
	mc, err := armsecurity.NewAssessmentsMetadataClient(u.ID, r.p.cred, r.p.armOpts)
	if err != nil {
		return steward.WrapError(steward.CodeInternal, err, "defender source: assessments metadata client")
	}
	meta := map[string]*armsecurity.AssessmentMetadataPropertiesResponse{}
	mp := mc.NewListBySubscriptionPager(nil)
	for page := 1; mp.More(); page++ {
		resp, err := mp.NextPage(ctx)
		if err != nil {
			return fail(fmt.Sprintf("the assessment metadata of subscription %s, page %d", u.ID, page), err)
		}
		for _, m := range resp.Value {
			if m != nil && m.Name != nil && m.Properties != nil {
				meta[strings.ToLower(*m.Name)] = m.Properties
			}
		}
	}

	ac, err := armsecurity.NewAssessmentsClient(r.p.cred, r.p.armOpts)
	if err != nil {
		return steward.WrapError(steward.CodeInternal, err, "defender source: assessments client")
	}
	ap := ac.NewListPager("subscriptions/"+u.ID, nil)
	for page := 1; ap.More(); page++ {
		what := fmt.Sprintf("the assessments of subscription %s, page %d", u.ID, page)
		resp, err := ap.NextPage(ctx)
		if err != nil {
			return fail(what, err)
		}
		for _, a := range resp.Value {
			if a == nil {
				continue
			}
			f := findingFromAssessment(a, meta)
			obs, err := f.observation(u)
			if err != nil {
				r.failed(ctx, u, steward.WrapError(steward.CodeInvalid, err, "defender source: %s: assessment %q: %s", what, f.assessmentID, steward.ErrorMessage(err)))
				return nil
			}
			if err := r.sink.Observe(ctx, u, obs); err != nil {
				return err
			}
		}
	}
	return r.done(ctx, u)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func findingFromAssessment(a *armsecurity.AssessmentResponse, meta map[string]*armsecurity.AssessmentMetadataPropertiesResponse) finding {
	f := finding{assessmentID: deref(a.ID), key: deref(a.Name)}
	if p := a.Properties; p != nil {
		f.displayName = deref(p.DisplayName)
		if st := p.Status; st != nil {
			f.status = string(deref(st.Code))
			f.cause = deref(st.Cause)
			f.statusDesc = deref(st.Description)
		}
		if rd := p.ResourceDetails; rd != nil {
			f.source = string(deref(rd.GetResourceDetails().Source))
			if az, ok := rd.(*armsecurity.AzureResourceDetails); ok {
				f.resourceID = strings.TrimSpace(deref(az.ID))
			}
		}
		if m := p.Metadata; m != nil {
			f.severity = string(deref(m.Severity))
			f.description = deref(m.Description)
			f.remediation = deref(m.RemediationDescription)
			f.displayName = firstNonEmpty(f.displayName, deref(m.DisplayName))
			for _, c := range m.Categories {
				f.categories = append(f.categories, string(deref(c)))
			}
		}
	}
	if m := meta[strings.ToLower(f.key)]; m != nil {
		if f.severity == "" {
			f.severity = string(deref(m.Severity))
		}
		f.description = firstNonEmpty(f.description, deref(m.Description))
		f.remediation = firstNonEmpty(f.remediation, deref(m.RemediationDescription))
		f.displayName = firstNonEmpty(f.displayName, deref(m.DisplayName))
		if len(f.categories) == 0 {
			for _, c := range m.Categories {
				f.categories = append(f.categories, string(deref(c)))
			}
		}
	}
	if f.resourceID == "" {
		// AWS and GCP resources (and any source the SDK does not model)
		// carry their ID in shapes the SDK drops; the assessment's own ID
		// is the resource's ID plus /providers/Microsoft.Security/assessments/<key>.
		f.resourceID = resourceFromAssessmentID(f.assessmentID)
	}
	return f
}

// armSubscription is an entry of GET /subscriptions.
type armSubscription struct {
	ID    string            `json:"subscriptionId"`
	State string            `json:"state"`
	Tags  map[string]string `json:"tags"`
}

// armGetPages GETs path and every nextLink after it, decoding each page's
// value array into T.
func armGetPages[T any](ctx context.Context, p *puller, path, what string, each func(T) error) error {
	client, err := arm.NewClient("steward-defender", "v1.0.0", p.cred, p.armOpts)
	if err != nil {
		return steward.WrapError(steward.CodeInternal, err, "defender source: ARM client")
	}
	next := runtime.JoinPaths(client.Endpoint(), path) + "?api-version=" + armResourcesVersion
	for page := 1; next != ""; page++ {
		req, err := runtime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			return &pageError{what: what, page: page, err: err}
		}
		resp, err := client.Pipeline().Do(req)
		if err != nil {
			return &pageError{what: what, page: page, err: err}
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			return &pageError{what: what, page: page, err: runtime.NewResponseError(resp)}
		}
		var body struct {
			Value    []T    `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if err := runtime.UnmarshalAsJSON(resp, &body); err != nil {
			return &pageError{what: what, page: page, err: steward.WrapError(steward.CodeInvalid, err, "the answer is not a list")}
		}
		for _, v := range body.Value {
			if err := each(v); err != nil {
				return err
			}
		}
		next = body.NextLink
	}
	return nil
}

// listSubscriptions lists every enabled subscription the credential sees
// (ARM GET /subscriptions), when Resource Graph is not used.
func (p *puller) listSubscriptions(ctx context.Context) ([]armSubscription, error) {
	var out []armSubscription
	err := armGetPages(ctx, p, "/subscriptions", "the list of subscriptions", func(s armSubscription) error {
		switch strings.ToLower(s.State) {
		case "disabled", "deleted":
			return nil
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		what := "the list of subscriptions"
		if pe, ok := errors.AsType[*pageError](err); ok {
			what = fmt.Sprintf("%s, page %d", pe.what, pe.page)
		}
		se, _ := requestError(err, what)
		return nil, se
	}
	return out, nil
}

type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// armTags reads the tags of subscription u and of its resource groups
// through ARM and hands them to the sink.
func (p *puller) armTags(ctx context.Context, u pull.Unit, sink pull.Sink) error {
	client, err := arm.NewClient("steward-defender", "v1.0.0", p.cred, p.armOpts)
	if err != nil {
		return steward.WrapError(steward.CodeInternal, err, "defender source: ARM client")
	}
	req, err := runtime.NewRequest(ctx, http.MethodGet, runtime.JoinPaths(client.Endpoint(), "/subscriptions/"+u.ID)+"?api-version="+armResourcesVersion)
	if err != nil {
		return err
	}
	resp, err := client.Pipeline().Do(req)
	if err != nil {
		return err
	}
	if !runtime.HasStatusCode(resp, http.StatusOK) {
		return runtime.NewResponseError(resp)
	}
	var sub armSubscription
	if err := runtime.UnmarshalAsJSON(resp, &sub); err != nil {
		return steward.WrapError(steward.CodeInvalid, err, "the subscription's answer is not a subscription")
	}
	if err := sink.ScopeTags(ctx, u.Scope, nonNil(sub.Tags)); err != nil {
		return &sinkError{err}
	}
	type group struct {
		ID   string            `json:"id"`
		Tags map[string]string `json:"tags"`
	}
	return armGetPages(ctx, p, "/subscriptions/"+u.ID+"/resourcegroups", "the resource groups of subscription "+u.ID, func(g group) error {
		if g.ID == "" {
			return nil
		}
		if err := sink.ScopeTags(ctx, steward.Scope(g.ID), nonNil(g.Tags)); err != nil {
			return &sinkError{err}
		}
		return nil
	})
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
