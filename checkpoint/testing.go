package checkpoint

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CorruptTensor flips one bit of a stored tensor without updating its
// checksum, as a failing disk or a stray write would. It is for fault
// injection in tests of the packages that restore checkpoints. The store
// file must not be open elsewhere; the tensor must hold at least one byte.
func CorruptTensor(path string, id uint64, group Group, name string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("checkpoint: corrupt %s: %w", path, err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		rec, err := readRecord(tx, id)
		if err != nil {
			return err
		}
		for i, t := range rec.Tensors {
			if t.Group != group || t.Name != name {
				continue
			}
			if t.Bytes == 0 {
				return fmt.Errorf("%s tensor %q is empty", group, name)
			}
			data := tx.Bucket(bucketCheckpoints).Bucket(idKey(id)).Bucket(bucketData)
			v := append([]byte(nil), data.Get(dataKey(i, 0))...)
			if len(v) == 0 {
				return fmt.Errorf("%s tensor %q has no first chunk", group, name)
			}
			v[len(v)/2] ^= 0x04
			return data.Put(dataKey(i, 0), v)
		}
		return fmt.Errorf("%w: %s tensor %q", ErrNotFound, group, name)
	})
	if err != nil {
		return fmt.Errorf("checkpoint: corrupt checkpoint %d in %s: %w", id, path, err)
	}
	return nil
}
