// Package password hashes and verifies passwords with Argon2id (golang.org/x/crypto/argon2).
//
// A hash is stored as a PHC string that carries its own parameters and salt:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
//
// so the parameters can be raised later: Verify checks any stored hash with the parameters it
// was made with, and NeedsRehash tells the caller to store a new hash on the next sign-in.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's cost parameters.
type Params struct {
	// MemoryKiB is the memory cost in KiB.
	MemoryKiB uint32
	// Iterations is the time cost (passes over memory).
	Iterations uint32
	// Parallelism is the number of lanes.
	Parallelism uint8
}

// Minimums is OWASP's Password Storage Cheat Sheet table of equivalent minimum Argon2id
// configurations (memory, iterations; parallelism 1). Parameters pass when they reach at least
// one row in both memory and iterations.
var Minimums = []Params{
	{MemoryKiB: 47104, Iterations: 1, Parallelism: 1},
	{MemoryKiB: 19456, Iterations: 2, Parallelism: 1},
	{MemoryKiB: 12288, Iterations: 3, Parallelism: 1},
	{MemoryKiB: 9216, Iterations: 4, Parallelism: 1},
	{MemoryKiB: 7168, Iterations: 5, Parallelism: 1},
}

// Default is OWASP's recommended minimum: 19 MiB, 2 iterations, 1 lane.
var Default = Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}

const (
	saltBytes = 16
	keyBytes  = 32
	// MaxBytes bounds a password: Argon2 takes any length, but a megabyte password is a
	// denial of service, not a secret.
	MaxBytes = 1024
)

// Check reports whether p reaches OWASP's minimum.
func (p Params) Check() error {
	if p.Parallelism < 1 {
		return errors.New("parallelism must be at least 1")
	}
	for _, m := range Minimums {
		if p.MemoryKiB >= m.MemoryKiB && p.Iterations >= m.Iterations {
			return nil
		}
	}
	return fmt.Errorf("m=%d KiB, t=%d is below OWASP's minimum (e.g. m=19456 KiB with t=2, or m=47104 KiB with t=1)", p.MemoryKiB, p.Iterations)
}

// String renders the parameters as they appear in a PHC string.
func (p Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)
}

// Hasher hashes with its parameters and counts verifications (so tests can see that a sign-in
// for an unknown email runs the same verification as a wrong password).
type Hasher struct {
	params   Params
	dummy    string
	verified atomic.Int64
}

// NewHasher checks p against the minimum and prepares a dummy hash with the same parameters,
// which sign-ins for unknown accounts are verified against.
func NewHasher(p Params) (*Hasher, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	h := &Hasher{params: p}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	d, err := h.Hash(base64.RawStdEncoding.EncodeToString(secret))
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Dummy is a hash no password matches, made with the current parameters.
func (h *Hasher) Dummy() string { return h.dummy }

// Verifications counts calls of Verify since the Hasher was made.
func (h *Hasher) Verifications() int64 { return h.verified.Load() }

// Hash returns the PHC string of password with a fresh random salt.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > MaxBytes {
		return "", errors.New("password too long")
	}
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, h.params.Iterations, h.params.MemoryKiB, h.params.Parallelism, keyBytes)
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, comparing in constant
// time. A malformed hash never matches. It always does the full work of the stored (or dummy)
// parameters.
func (h *Hasher) Verify(encoded, password string) bool {
	h.verified.Add(1)
	p, salt, want, err := decode(encoded)
	if err != nil || len(password) > MaxBytes {
		// Still spend the time a real verification would.
		p, salt, want, _ = decode(h.dummy)
		argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NeedsRehash reports whether encoded was made with parameters other than the Hasher's (or
// is not an Argon2id PHC string at all).
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, key, err := decode(encoded)
	return err != nil || p != h.params || len(key) != keyBytes
}

// ParamsOf returns the parameters a PHC string was made with.
func ParamsOf(encoded string) (Params, error) {
	p, _, _, err := decode(encoded)
	return p, err
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errFormat = errors.New("not an Argon2id PHC string")

func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errFormat
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, errFormat
	}
	var p Params
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil || n != 3 {
		return Params{}, nil, nil, errFormat
	}
	if p.Iterations < 1 || p.Parallelism < 1 || p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > 4<<20 {
		return Params{}, nil, nil, errFormat
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, errFormat
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, errFormat
	}
	return p, salt, key, nil
}
