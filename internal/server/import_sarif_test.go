package server_test

import (
	"bytes"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// TestImportSARIF: a real Trivy SARIF file uploaded through the import API
// is detected as SARIF and applied: one assessment per CVE on the image.
// A Checkov report named by ?format=checkov is applied too.
func TestImportSARIF(t *testing.T) {
	t.Parallel()
	b := setup(t)

	data, err := os.ReadFile("../../testdata/sarif/trivy_alpine-310.sarif")
	require.NoError(t, err)
	imp, err := b.client.UploadImport(t.Context(), bytes.NewReader(data), int64(len(data)), "trivy.sarif", "")
	require.NoError(t, err)
	require.Equal(t, "sarif", imp.Format)
	imp = b.waitImport(t, imp.ID)
	require.Equal(t, "succeeded", imp.State, imp.Error)
	require.Equal(t, 4, imp.Result.Observations)

	page, err := b.client.ListAssessments(t.Context(), url.Values{"limit": {"100"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 4)
	for _, a := range page.Items {
		require.Equal(t, "/repos/unknown/files/testdata/fixtures/images/alpine-310.tar.gz", a.ResourceID)
		require.Equal(t, steward.StatusUnhealthy, a.Status)
		require.Equal(t, steward.CloudOther, a.Cloud)
		require.Contains(t, []string{"trivy:CVE-2019-1549", "trivy:CVE-2019-1551", "trivy:CVE-2019-1563", "trivy:CVE-2019-1547"}, a.RecommendationKey)
	}

	data, err = os.ReadFile("../../testdata/checkov/checkov_synthetic.json")
	require.NoError(t, err)
	imp, err = b.client.UploadImport(t.Context(), bytes.NewReader(data), int64(len(data)), "checkov.json", "checkov")
	require.NoError(t, err)
	require.Equal(t, "checkov", imp.Format)
	imp = b.waitImport(t, imp.ID)
	require.Equal(t, "succeeded", imp.State, imp.Error)
	require.Equal(t, 3, imp.Result.Observations)

	// Format names are read like the CLI's: any case, aliases; an unknown
	// one is refused with the list.
	imp, err = b.client.UploadImport(t.Context(), bytes.NewReader(data), int64(len(data)), "checkov.json", "Checkov")
	require.NoError(t, err)
	require.Equal(t, "checkov", imp.Format)
	b.waitImport(t, imp.ID)
	_, err = b.client.UploadImport(t.Context(), bytes.NewReader(data), int64(len(data)), "checkov.json", "xml")
	requireRefused(t, err, 400, `unknown format "xml"`)
	require.Contains(t, err.Error(), `"sarif" (SARIF 2.1`)
}
