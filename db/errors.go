package db

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Kind classifies a domain error for the API: what status a client gets.
type Kind int

// The kinds of domain error.
const (
	// KindInvalid: the request is well formed but refers to things that do not fit (422).
	KindInvalid Kind = iota + 1
	// KindConflict: the request clashes with the current state (409).
	KindConflict
	// KindNotFound: something the request names does not exist (404).
	KindNotFound
	// KindForbidden: the caller may not do this (403).
	KindForbidden
)

// Error is a domain error with a stable code and a one-sentence message for clients.
type Error struct {
	Kind    Kind
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is lets errors.Is(err, ErrNotFound) hold for every not-found domain error.
func (e *Error) Is(target error) bool { return target == ErrNotFound && e.Kind == KindNotFound }

func invalid(code, msg string) error  { return &Error{Kind: KindInvalid, Code: code, Message: msg} }
func conflict(code, msg string) error { return &Error{Kind: KindConflict, Code: code, Message: msg} }
func missing(code, msg string) error  { return &Error{Kind: KindNotFound, Code: code, Message: msg} }

// AsError returns the domain error inside err, if there is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Cursor marks a position in a list sorted by time then id, newest first.
type Cursor struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

// Encode makes the cursor an opaque string for the API.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("after is not a cursor this API returned")
	}
	var c Cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == uuid.Nil {
		return nil, errors.New("after is not a cursor this API returned")
	}
	return &c, nil
}

// Page asks for one page of a list.
type Page struct {
	After *Cursor
	Limit int
}

// pageOf trims one extra fetched row into a next cursor.
func pageOf[T any](rows []T, limit int, key func(T) Cursor) ([]T, *Cursor) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	c := key(rows[len(rows)-1])
	return rows, &c
}
