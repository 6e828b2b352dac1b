package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ReadPassphraseFile reads a passphrase-mode backup's passphrase (the file's first line) as an
// age scrypt identity, so `restore --passphrase-file` and drills open backups made with
// BACKUP_PASSPHRASE_FILE.
func ReadPassphraseFile(path string) ([]age.Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	pass := strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	if pass == "" {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, fmt.Errorf("passphrase file %s: %w", path, err)
	}
	return []age.Identity{id}, nil
}

// CheckIdentity reads only the head of a backup's object and checks that one of ids opens
// it, so a wrong identity or passphrase is reported before anything is downloaded or any
// target is touched.
func CheckIdentity(ctx context.Context, st Store, m *Manifest, ids []age.Identity) error {
	if len(ids) == 0 {
		return errors.New("restore: no identity to decrypt with (--identity or --passphrase-file)")
	}
	out, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(m.Object),
		Range: aws.String("bytes=0-65535")})
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("restore %s: the object %s is missing", m.ID, m.Object)
		}
		return fmt.Errorf("restore %s: read the object: %w", m.ID, err)
	}
	defer out.Body.Close()
	head, err := io.ReadAll(out.Body)
	if err != nil {
		return fmt.Errorf("restore %s: read the object: %w", m.ID, err)
	}
	if _, err := age.Decrypt(bytes.NewReader(head), ids...); err != nil {
		mode := "identity"
		if m.Passphrase {
			mode = "passphrase"
		}
		return fmt.Errorf("restore %s: this %s does not open the backup (%v); nothing was restored", m.ID, mode, err)
	}
	return nil
}
