package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/store"
)

// importView is an import with its live progress while a job works on it.
type importView struct {
	*store.Import
	Progress *ingest.Progress `json:"progress,omitempty"`
}

// postImport spools the request body (a whole findings file, any supported
// format) to disk and queues its processing in the same transaction that
// records the import, so an accepted upload is never lost: if Steward stops,
// the job runs when it is back.
func (a *API) postImport(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "format", "filename")
	format, ferr := source.ParseFormat(q.str("format"))
	filename := filepath.Base(q.str("filename"))
	if q.err != nil {
		return q.err
	}
	if ferr != nil {
		return ferr
	}
	if err := requireContentType(r, importContentTypes...); err != nil {
		return err
	}
	if scope := callerScope(r); scope != "" {
		// The file is applied later by a job that does not know the
		// caller; rather than apply part of it, refuse it whole.
		return steward.Errorf(steward.CodeForbidden, "token %q is limited to %s: send its findings with POST /api/v1/assessments, which checks every record against the scope", actor(r), scope)
	}
	body, err := newMinRateReader(w, r.Body, a.cfg.uploadRate())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("create spool directory: %w", err)
	}
	f, err := os.CreateTemp(a.cfg.SpoolDir, "import-*.spool")
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	spool := f.Name()
	keep := false
	defer func() {
		if !keep {
			_ = os.Remove(spool)
		}
	}()
	size, err := io.Copy(f, http.MaxBytesReader(w, body, a.cfg.MaxImportBytes))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return steward.Errorf(steward.CodeTooLarge, "import file is larger than %d bytes", a.cfg.MaxImportBytes)
		}
		if steward.ErrorCode(err) == steward.CodeTimeout {
			return err
		}
		return steward.WrapError(steward.CodeInvalid, err, "upload interrupted after %d bytes", size)
	}
	if size == 0 {
		return invalid("the uploaded file is empty")
	}
	if format == "" {
		if format, err = sniff(spool); err != nil {
			return err
		}
	} else if _, err := source.ParserFor(format); err != nil {
		return err
	}

	imp := &store.Import{Format: string(format), Filename: filename, SpoolPath: spool, Size: size, CreatedBy: actor(r)}
	err = a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		if err := tx.CreateImport(r.Context(), imp); err != nil {
			return err
		}
		return a.queue.InsertTx(r.Context(), tx.SQL(), jobs.ImportArgs{ImportID: imp.ID})
	})
	if err != nil {
		return fmt.Errorf("record import: %w", err)
	}
	keep = true
	w.Header().Set("Location", "/api/v1/imports/"+strconv.FormatInt(imp.ID, 10))
	writeJSON(w, http.StatusAccepted, importView{Import: imp})
	return nil
}

func sniff(path string) (source.Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open spool file: %w", err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read spool file: %w", err)
	}
	return source.Detect(head[:n])
}

func (a *API) listImports(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
	cursor, limit := q.str("cursor"), q.limit()
	if q.err != nil {
		return q.err
	}
	items, next, err := a.db.FindImports(r.Context(), cursor, limit)
	if err != nil {
		return err
	}
	views := make([]importView, 0, len(items))
	for _, imp := range items {
		if callerScope(r) != "" && imp.CreatedBy != actor(r) {
			continue // a scoped caller sees only its own imports
		}
		views = append(views, a.importView(r.Context(), imp))
	}
	writeJSON(w, http.StatusOK, newList(views, next))
	return nil
}

func (a *API) getImport(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	imp, err := a.db.FindImportByID(r.Context(), id)
	if err != nil {
		return err
	}
	if callerScope(r) != "" && imp.CreatedBy != actor(r) {
		return notFound("import %d not found", id)
	}
	writeJSON(w, http.StatusOK, a.importView(r.Context(), imp))
	return nil
}

func (a *API) importView(ctx context.Context, imp *store.Import) importView {
	v := importView{Import: imp}
	if p, ok := a.ingest.Progress(ctx, imp.ID); ok {
		v.Progress = &p
	}
	return v
}
