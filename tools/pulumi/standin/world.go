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
	keys := make([]string, 0, len(d.Resources))
	for k := range d.Resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
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
		oldKey, _ := find(d, typ, id, account)
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
// (terraform-provider-aws treats NotFound on delete as success).
func (w *World) Delete(typ, id, account string) error {
	return w.update(func(d *worldData) error {
		if k, _ := find(d, typ, id, account); k != "" {
			delete(d.Resources, k)
		}
		return nil
	})
}
