package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

func (h *Handler) importPages() []page {
	return []page{
		{"GET", "/imports", reader, h.imports},
		{"POST", "/imports", contributor, h.uploadImport},
		{"GET", "/imports/{id}", reader, h.importPage},
	}
}

// importFormats are the formats the API accepts (source.Formats); the
// empty one lets the server detect it.
var importFormats = []struct{ Value, Label string }{
	{"", "Detect from the file"},
	{"steward", "Steward JSON (document or JSON Lines)"},
	{"ocsf", "OCSF 1.x findings (e.g. prowler -M json-ocsf)"},
	{"sarif", "SARIF 2.1 (Trivy, Checkov, Semgrep, CodeQL, ...)"},
	{"checkov", "Checkov JSON (checkov -o json)"},
	{"asff", "AWS Security Hub findings (ASFF)"},
	{"scc", "Google Security Command Center findings (JSON export)"},
}

type importsView struct {
	Imports    []apiclient.Import
	NextCursor string
	Cursor     string
	Formats    []struct{ Value, Label string }
	Format     string
	Error      fieldError
}

func (h *Handler) imports(w http.ResponseWriter, r *http.Request) error {
	return h.renderImports(w, r, http.StatusOK, "", fieldError{})
}

// renderImports shows the imports list with the upload form, and the
// upload's error when there was one.
func (h *Handler) renderImports(w http.ResponseWriter, r *http.Request, status int, format string, fe fieldError) error {
	c := h.apiFor(w, r)
	q := url.Values{}
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" && r.Method == http.MethodGet {
		q.Set("cursor", cursor)
	}
	p, err := c.ListImports(r.Context(), q)
	if err != nil {
		return err
	}
	v := importsView{Imports: p.Items, NextCursor: p.NextCursor, Cursor: q.Get("cursor"),
		Formats: importFormats, Format: format, Error: fe}
	return h.render(w, r, status, "imports.html", "Imports", v)
}

// uploadImport streams the form's file part straight into the API's
// upload: the file is never held in memory or spooled twice. The format
// field comes before the file in the form, so it has been read when the
// file part starts.
func (h *Handler) uploadImport(w http.ResponseWriter, r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return h.renderImports(w, r, http.StatusBadRequest, "", fieldError{Field: "file", Message: "send the upload form with a file (multipart/form-data)"})
	}
	format := ""
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return h.renderImports(w, r, http.StatusBadRequest, format, fieldError{Field: "file", Message: "choose a findings file to upload"})
		}
		if err != nil {
			return h.renderImports(w, r, http.StatusBadRequest, format, fieldError{Field: "file", Message: "the upload was interrupted; try again"})
		}
		switch part.FormName() {
		case "format":
			b, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				return h.renderImports(w, r, http.StatusBadRequest, "", fieldError{Field: "file", Message: "the upload was interrupted; try again"})
			}
			format = strings.TrimSpace(string(b))
			if !importKnownFormat(format) {
				return h.renderImports(w, r, http.StatusBadRequest, "", fieldError{Field: "format", Message: "choose one of the listed formats"})
			}
		case "file":
			if part.FileName() == "" {
				return h.renderImports(w, r, http.StatusBadRequest, format, fieldError{Field: "file", Message: "choose a findings file to upload"})
			}
			imp, err := h.apiFor(w, r).UploadImport(r.Context(), part, -1, part.FileName(), format)
			if err != nil {
				status, _ := statusOf(err)
				fe := formError(err)
				if fe.Field == "" {
					fe.Field = "file"
				}
				return h.renderImports(w, r, status, format, fe)
			}
			http.Redirect(w, r, "/imports/"+strconv.FormatInt(imp.ID, 10), http.StatusSeeOther)
			return nil
		}
		_ = part.Close()
	}
}

func importKnownFormat(f string) bool {
	for _, k := range importFormats {
		if k.Value == f {
			return true
		}
	}
	return false
}

// importRecordError is a refused file's error split into the record it names
// and what is wrong with it (docs/formats.md: "record 3 (line 3): ...").
type importRecordError struct {
	Record  int
	Line    int
	Message string
}

var importRecordErrorRE = regexp.MustCompile(`^record (\d+)(?: \(line (\d+)\))?: (.*)$`)

func importParseRecordError(msg string) *importRecordError {
	m := importRecordErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return nil
	}
	rec, _ := strconv.Atoi(m[1])
	line, _ := strconv.Atoi(m[2])
	return &importRecordError{Record: rec, Line: line, Message: m[3]}
}

type importView struct {
	Import      *apiclient.Import
	Done        bool
	RecordError *importRecordError
	Percent     int
}

func (h *Handler) importPage(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return steward.Errorf(steward.CodeNotFound, "there is no import %q", r.PathValue("id"))
	}
	imp, err := h.apiFor(w, r).GetImport(r.Context(), id)
	if err != nil {
		return err
	}
	v := importView{Import: imp, Done: imp.State == "succeeded" || imp.State == "failed"}
	if imp.State == "failed" {
		v.RecordError = importParseRecordError(imp.Error)
	}
	if p := imp.Progress; p != nil {
		switch {
		case p.RecordsTotal > 0:
			v.Percent = p.Records * 100 / p.RecordsTotal
		case p.BytesTotal > 0:
			v.Percent = int(p.BytesRead * 100 / p.BytesTotal)
		}
	}
	return h.render(w, r, http.StatusOK, "import.html", "Import "+strconv.FormatInt(id, 10), v)
}
