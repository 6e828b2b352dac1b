package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// errorBody is the one error shape of the API: {"error": {"code", "message"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fail ends the request with status and the error body.
func fail(c *gin.Context, status int, code, message string) {
	c.Abort()
	c.PureJSON(status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// Common failures, so the same case reads the same everywhere.
func badRequest(c *gin.Context, code, message string) { fail(c, http.StatusBadRequest, code, message) }
func forbidden(c *gin.Context, message string)        { fail(c, http.StatusForbidden, "forbidden", message) }
func notFound(c *gin.Context, what string) {
	fail(c, http.StatusNotFound, "not_found", what+" not found")
}

// internalError hides the cause from the client and logs it with the request.
func (s *Server) internalError(c *gin.Context, err error) {
	s.logger.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method,
		"route", c.FullPath(), "error", err)
	fail(c, http.StatusInternalServerError, "internal", "the server could not complete the request")
}

// maxBodyBytes bounds every JSON request body.
const maxBodyBytes = 1 << 20

// decodeJSON reads the request body into v strictly: one JSON value, no unknown fields, the
// right types. On failure it answers 400 (413 when too large) and returns false, so the
// handler returns before writing anything.
func decodeJSON(c *gin.Context, v any) bool {
	return decodeJSONLimit(c, v, maxBodyBytes)
}

func decodeJSONLimit(c *gin.Context, v any, limit int64) bool {
	if ct := c.ContentType(); ct != "" && ct != "application/json" {
		fail(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
		return false
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	if err := DecodeStrict(body, v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", limit))
			return false
		}
		var de *DecodeError
		if errors.As(err, &de) {
			badRequest(c, de.Code, de.Message)
			return false
		}
		badRequest(c, "invalid_json", "the body is not valid JSON")
		return false
	}
	return true
}

// DecodeError is a client's mistake in a JSON body, with the API error code it maps to.
type DecodeError struct {
	Code    string
	Message string
}

func (e *DecodeError) Error() string { return e.Message }

// DecodeStrict decodes exactly one JSON value from r into v, refusing unknown fields, wrong
// types and trailing data. Errors from the reader itself are returned as they are.
func DecodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return classifyJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return &DecodeError{Code: "invalid_json", Message: "the body must hold exactly one JSON value"}
	}
	if field, name, ok := findNUL(reflect.ValueOf(v), ""); ok {
		// PostgreSQL text cannot hold NUL, so a stored field would fail with 500; no text
		// field of the API has a use for it.
		return &DecodeError{Code: "invalid_" + name, Message: field + " must not contain NUL characters"}
	}
	return nil
}

// findNUL walks a decoded value and reports the first string holding a NUL character: its
// path as the client wrote it (events[2].external_id) and its JSON field name.
func findNUL(v reflect.Value, path string) (field, name string, found bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", "", false
		}
		return findNUL(v.Elem(), path)
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			return path, fieldName(path), true
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if n == "-" {
				continue
			}
			if n == "" {
				n = f.Name
			}
			if f.Anonymous && f.Tag.Get("json") == "" {
				n = strings.TrimSuffix(path, ".")
			} else if path != "" {
				n = path + "." + n
			}
			if field, name, ok := findNUL(v.Field(i), n); ok {
				return field, name, true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes (json.RawMessage, base64) are not text
			return "", "", false
		}
		for i := range v.Len() {
			if field, name, ok := findNUL(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); ok {
				return field, name, true
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if strings.IndexByte(k, 0) >= 0 {
				return path, fieldName(path), true
			}
			if field, name, ok := findNUL(iter.Value(), path+"."+k); ok {
				return field, name, true
			}
		}
	}
	return "", "", false
}

// fieldName is the last JSON field name of a path: events[2].external_id -> external_id.
func fieldName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	if i := strings.IndexByte(path, '['); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "text"
	}
	return path
}

func classifyJSONError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	var timeErr *time.ParseError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &timeErr):
		return &DecodeError{Code: "wrong_type", Message: "times must be RFC 3339 strings, such as 2026-01-02T15:04:05Z"}
	case errors.Is(err, io.EOF):
		return &DecodeError{Code: "invalid_json", Message: "the body is empty"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Code: "invalid_json", Message: "the body is not valid JSON"}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &DecodeError{Code: "wrong_type", Message: "the body must be a JSON object"}
		}
		return &DecodeError{Code: "wrong_type", Message: fmt.Sprintf("field %s must be a JSON %s", field, jsonKind(typeErr.Type.Kind().String()))}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &DecodeError{Code: "unknown_field", Message: "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	default:
		return &DecodeError{Code: "invalid_json", Message: "the body is not valid JSON"}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	default:
		if strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float") {
			return "number"
		}
		return "value of another type"
	}
}
