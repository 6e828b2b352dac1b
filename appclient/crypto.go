// Package appclient is the client side of end-to-end encrypted direct messages: key
// generation, key agreement, encryption and decryption, and the HTTP calls of the app API.
// The server only ever sees public keys, ciphertext and nonces.
//
// The scheme:
//
//   - each user has an X25519 key pair (crypto/ecdh) and publishes the public key with
//     PUT /api/v1/keys;
//   - two users share a key: HKDF-SHA256 over the X25519 shared secret, no salt, with info
//     "creatorvault-dm-v1" || the lower public key || the higher public key (byte order), so
//     the key is bound to both public keys and both sides derive the same one;
//   - each message is sealed with XChaCha20-Poly1305 under a random 24-byte nonce, with
//     additional data sender id || recipient id (16 bytes each), so the server cannot replay
//     a message in the other direction or into another conversation.
package appclient

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// HKDFInfo prefixes the HKDF info string; both public keys follow it.
const HKDFInfo = "creatorvault-dm-v1"

// KeyPair is a user's X25519 key pair. The private key never leaves the client.
type KeyPair struct {
	priv *ecdh.PrivateKey
}

// GenerateKey makes a new X25519 key pair from crypto/rand.
func GenerateKey() (*KeyPair, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &KeyPair{priv: k}, nil
}

// LoadKey restores a key pair from its 32-byte private key.
func LoadKey(private []byte) (*KeyPair, error) {
	k, err := ecdh.X25519().NewPrivateKey(private)
	if err != nil {
		return nil, err
	}
	return &KeyPair{priv: k}, nil
}

// PublicKey returns the 32-byte public key to publish.
func (k *KeyPair) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// PrivateKey returns the 32-byte private key, for the client to store safely.
func (k *KeyPair) PrivateKey() []byte { return k.priv.Bytes() }

// SharedKey derives the 32-byte conversation key with the peer's public key.
func (k *KeyPair) SharedKey(peerPublic []byte) ([]byte, error) {
	peer, err := ecdh.X25519().NewPublicKey(peerPublic)
	if err != nil {
		return nil, fmt.Errorf("peer public key: %w", err)
	}
	secret, err := k.priv.ECDH(peer)
	if err != nil {
		return nil, err
	}
	mine := k.PublicKey()
	lo, hi := mine, peerPublic
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	info := make([]byte, 0, len(HKDFInfo)+64)
	info = append(append(append(info, HKDFInfo...), lo...), hi...)
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, info), key); err != nil {
		return nil, err
	}
	return key, nil
}

func additionalData(sender, recipient uuid.UUID) []byte {
	ad := make([]byte, 0, 32)
	return append(append(ad, sender[:]...), recipient[:]...)
}

// Seal encrypts plaintext from sender to recipient under key, with a fresh random nonce.
func Seal(key []byte, sender, recipient uuid.UUID, plaintext []byte) (ciphertext, nonce []byte, err error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return aead.Seal(nil, nonce, plaintext, additionalData(sender, recipient)), nonce, nil
}

// ErrDecrypt means a message did not authenticate: tampered, for someone else, or under the
// wrong key.
var ErrDecrypt = errors.New("the message does not decrypt: tampered or not for this key")

// Open decrypts a message from sender to recipient under key.
func Open(key []byte, sender, recipient uuid.UUID, ciphertext, nonce []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, nonce, ciphertext, additionalData(sender, recipient))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
