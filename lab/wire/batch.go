package wire

// batch is a run of packets decoded under one lock of the store
// (Decoder.BeginBatch … EndBatch).
type batch struct {
	shared *Store // the store front ends read, locked for the batch; nil outside one
	own    Store  // the decoder's view of it meanwhile
}

// BeginBatch takes the store's lock for the packets decoded until
// EndBatch: a batch costs one lock of the store front ends read, however
// many records its packets add, and a front end waits at most for one
// batch. Keep batches short (the capture ends one every few hundred
// packets, and before it waits for more). Calls do not nest.
//
// Meanwhile the decoder works on a view of its own of the store: the same
// rings and counters (the apps' data is shared), its own lock, so the
// decoder's per-record locking (Store.slot, and any code that locks the
// store it holds) takes a lock nobody else holds, and never waits.
func (d *Decoder) BeginBatch() {
	if d.batch.shared != nil {
		return
	}
	s := d.store
	s.mu.Lock()
	own := &d.batch.own
	own.size, own.apps, own.index, own.nextID, own.version, own.aside = s.size, s.apps, s.index, s.nextID, s.version, s.aside
	d.batch.shared, d.store = s, own
}

// EndBatch publishes the batch's records and counters and releases the
// store's lock.
func (d *Decoder) EndBatch() {
	s := d.batch.shared
	if s == nil {
		return
	}
	own := d.store
	s.apps, s.index, s.nextID, s.version, s.aside = own.apps, own.index, own.nextID, own.version, own.aside
	d.store, d.batch.shared = s, nil
	own.apps, own.index, own.aside = nil, nil, nil
	s.mu.Unlock()
}
