package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
)

// The "world" is the fake cloud: which physical resources exist. Entries are keyed by the AWS
// uniqueness scope of the resource (see uniquenessKey), so a second create in the same scope fails
// the way AWS would. With PULUMI_AWS_STANDIN_WORLD set, the world is a JSON file shared by every
// provider process of a test run (several stacks, several explicit providers, concurrent `pulumi`
// runs); each call does a locked read-modify-write. Without it, the world lives in memory.

const envWorld = "PULUMI_AWS_STANDIN_WORLD"

// WorldEntry is one physical resource.
type WorldEntry struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Account string          `json:"account"`
	Region  string          `json:"region,omitempty"`
	URN     string          `json:"urn,omitempty"`
	Outputs json.RawMessage `json:"outputs,omitempty"`
	// Objects are the keys of the objects an S3 bucket holds (sorted; nothing else has any).
	// They live and die with the bucket's entry: S3 deletes only an empty bucket.
	Objects []string `json:"objects,omitempty"`
}

type worldData struct {
	Resources map[string]*WorldEntry `json:"resources"`
}

// World is the store; all methods are safe for concurrent use within and across processes.
type World struct {
	path string // "" = in memory
	mu   sync.Mutex
	mem  worldData
}

// NewWorld opens the world named by $PULUMI_AWS_STANDIN_WORLD (or an in-memory one).
func NewWorld(path string) *World {
	return &World{path: path, mem: worldData{Resources: map[string]*WorldEntry{}}}
}

// Persistent reports whether the world is backed by a file (and so can say "this was deleted").
func (w *World) Persistent() bool { return w.path != "" }

// update runs fn on the current world under the in-process mutex and, for a file-backed world, an
// exclusive flock on "<path>.lock"; if fn returns nil the modified world is written back atomically.
func (w *World) update(fn func(d *worldData) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.path == "" {
		return fn(&w.mem)
	}
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		return fmt.Errorf("world %s: %w", w.path, err)
	}
	lock, err := os.OpenFile(w.path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("world lock %s.lock: %w", w.path, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("world lock %s.lock: %w", w.path, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	d := worldData{Resources: map[string]*WorldEntry{}}
	data, err := os.ReadFile(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("world %s: %w", w.path, err)
	case len(data) > 0:
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("world %s is not valid JSON: %w", w.path, err)
		}
		if d.Resources == nil {
			d.Resources = map[string]*WorldEntry{}
		}
	}
	if err := fn(&d); err != nil {
		return err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(w.path), ".world-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), w.path)
}

// ConflictError is what a create in an occupied uniqueness scope returns.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// Create registers an entry under key. If the key is taken, conflict(existing) decides: it returns
// the AWS error to raise, or nil to adopt (AWS calls that are upserts or idempotent creates).
func (w *World) Create(key string, e *WorldEntry, conflict func(existing *WorldEntry) error) error {
	return w.update(func(d *worldData) error {
		if old, ok := d.Resources[key]; ok && conflict != nil {
			if err := conflict(old); err != nil {
				return err
			}
		}
		d.Resources[key] = e
		return nil
	})
}

// Find returns the key and entry of (type, id, account), or "" if none.
func (w *World) Find(typ, id, account string) (string, *WorldEntry, error) {
	var key string
	var entry *WorldEntry
	err := w.update(func(d *worldData) error {
		key, entry = find(d, typ, id, account)
		return errNoWrite
	})
	if errors.Is(err, errNoWrite) {
		err = nil
	}
	return key, entry, err
}

var errNoWrite = errors.New("no write")

func find(d *worldData, typ, id, account string) (string, *WorldEntry) {
	for _, k := range sortedWorldKeys(d) {
		e := d.Resources[k]
		if e.Type == typ && e.ID == id && e.Account == account {
			return k, e
		}
	}
	return "", nil
}

// Replace updates the entry of (type, id, account): it moves it to newKey (checking conflicts in
// the new scope) and stores the new outputs. A missing entry is (re)created.
func (w *World) Replace(typ, id, account, newKey string, e *WorldEntry,
	conflict func(existing *WorldEntry) error,
) error {
	return w.update(func(d *worldData) error {
		oldKey, old := find(d, typ, id, account)
		if old != nil {
			e.Objects = old.Objects // an update changes the resource, not what it holds
		}
		if newKey != oldKey {
			if other, ok := d.Resources[newKey]; ok && conflict != nil {
				if err := conflict(other); err != nil {
					return err
				}
			}
			if oldKey != "" {
				delete(d.Resources, oldKey)
			}
		}
		d.Resources[newKey] = e
		return nil
	})
}

// Delete removes the entry of (type, id, account); deleting something absent is not an error
// (terraform-provider-aws treats NotFound on delete as success). refuse, when not nil, looks at the
// entry first and may return the error AWS would give instead (a bucket that is not empty).
func (w *World) Delete(typ, id, account string, refuse func(existing *WorldEntry) error) error {
	return w.update(func(d *worldData) error {
		k, e := find(d, typ, id, account)
		if k == "" {
			return nil
		}
		if refuse != nil {
			if err := refuse(e); err != nil {
				return err
			}
		}
		delete(d.Resources, k)
		return nil
	})
}

// NoSuchBucketError is what writing into a bucket the world does not hold returns.
type NoSuchBucketError struct{ Bucket string }

func (e *NoSuchBucketError) Error() string {
	return fmt.Sprintf("NoSuchBucket: The specified bucket does not exist (bucket %s)", e.Bucket)
}

// bucketTypes are the tokens whose world entries are S3 buckets (pulumi-aws 7 maps aws_s3_bucket to
// both).
var bucketTypes = map[string]bool{"aws:s3/bucket:Bucket": true, "aws:s3/bucketV2:BucketV2": true}

// PutObject records an object `key` in the bucket named `bucket`, as S3 PutObject would (the same
// key again replaces the object: it is kept once). Bucket names are global, so the bucket is found
// by name alone.
func (w *World) PutObject(bucket, key string) error {
	return w.update(func(d *worldData) error {
		for _, k := range sortedWorldKeys(d) {
			e := d.Resources[k]
			if !bucketTypes[e.Type] || e.ID != bucket {
				continue
			}
			i := sort.SearchStrings(e.Objects, key)
			if i == len(e.Objects) || e.Objects[i] != key {
				e.Objects = append(e.Objects, "")
				copy(e.Objects[i+1:], e.Objects[i:])
				e.Objects[i] = key
			}
			return nil
		}
		return &NoSuchBucketError{Bucket: bucket}
	})
}

// Objects returns the keys of the objects in the bucket named `bucket` (nil if it holds none or
// does not exist).
func (w *World) Objects(bucket string) ([]string, error) {
	var out []string
	err := w.update(func(d *worldData) error {
		for _, k := range sortedWorldKeys(d) {
			if e := d.Resources[k]; bucketTypes[e.Type] && e.ID == bucket {
				out = append(out, e.Objects...)
			}
		}
		return errNoWrite
	})
	if errors.Is(err, errNoWrite) {
		err = nil
	}
	return out, err
}

func sortedWorldKeys(d *worldData) []string {
	keys := make([]string, 0, len(d.Resources))
	for k := range d.Resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
