package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/stewardhq/steward"
)

// A cursor is the opaque position after the last row of a page: base64url of
// a small JSON document naming the listing (so a cursor of one listing is
// refused by another) and the last row's sort key.
type cursor[K any] struct {
	Kind string `json:"k"`
	Key  K      `json:"v"`
}

func encodeCursor[K any](kind string, key K) string {
	b, err := json.Marshal(cursor[K]{Kind: kind, Key: key})
	if err != nil {
		panic("encode cursor: " + err.Error()) // keys are plain values
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the key in s, ok=false for the empty cursor (first
// page), or a CodeInvalid error for anything that is not our cursor of kind.
func decodeCursor[K any](kind, s string) (key K, ok bool, err error) {
	if s == "" {
		return key, false, nil
	}
	invalid := steward.Errorf(steward.CodeInvalid, "invalid cursor")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return key, false, invalid
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c cursor[*K]
	if err := dec.Decode(&c); err != nil || c.Kind != kind || c.Key == nil || dec.More() {
		return key, false, invalid
	}
	return *c.Key, true, nil
}

// Cursor kinds.
const (
	cursorRecommendation = "rec"
	cursorAssessment     = "asm"
	// cursorAssessmentInRecommendation pages one recommendation's
	// assessments in resource order (the key is still an assessment ID).
	cursorAssessmentInRecommendation = "asr"
	cursorResource                   = "res"
	cursorAssignment                 = "asg"
	cursorImport                     = "imp"
	cursorTicket                     = "tkt"
	cursorAudit                      = "aud"
)

type recommendationKey struct {
	Rank int    `json:"r"`
	Key  string `json:"k"`
}

type assignmentKey struct {
	Due int64 `json:"d"` // Unix microseconds
	ID  int64 `json:"i"`
}
