package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the length of a Box key: AES-256.
const KeySize = 32

// boxVersion prefixes every sealed value so the format can change later
// (key rotation, another algorithm) without guessing.
const boxVersion byte = 1

// ErrOpen is returned by Box.Open for any ciphertext that does not
// authenticate: wrong key, wrong associated data, truncated or tampered.
// It deliberately says no more.
var ErrOpen = errors.New("secret: cannot open sealed value (wrong key, wrong context or corrupted data)")

// Box seals secrets for storage at rest with AES-256-GCM. It is safe for
// concurrent use.
//
// Sealed layout: version byte (1) | 12-byte random nonce | ciphertext+tag.
// A random nonce per Seal is safe for far more values than Steward stores
// under one key (the GCM limit is about 2^32 messages per key).
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a 32-byte key. The key is copied.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts s. context is authenticated but not encrypted: pass what
// the secret belongs to (e.g. "integration/42/password") so a sealed value
// copied to another row does not open there.
func (b *Box) Seal(s String, context []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(s.s)+b.aead.Overhead())
	out[0] = boxVersion
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("secret: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+ns], []byte(s.s), context), nil
}

// Open decrypts a value made by Seal with the same key and context. Every
// failure is ErrOpen.
func (b *Box) Open(sealed, context []byte) (String, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != boxVersion {
		return String{}, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], context)
	if err != nil {
		return String{}, ErrOpen
	}
	return String{s: string(plain)}, nil
}
