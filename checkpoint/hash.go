package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// hashAll returns the hex sha256 of every tensor's data, computed by up to
// workers goroutines: hashing runs at one to two GB/s per core, so on a
// checkpoint of hundreds of MB it is worth spreading.
func hashAll(ts []Tensor, workers int) []string {
	sums := make([]string, len(ts))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, len(ts)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				h := sha256.Sum256(ts[i].Data)
				sums[i] = hex.EncodeToString(h[:])
			}
		}()
	}
	for i := range ts {
		next <- i
	}
	close(next)
	wg.Wait()
	return sums
}
