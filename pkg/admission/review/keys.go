package review

// seen tracks the keys an object has had, for the repeated-key rule.
type seen uint64

func (m *seen) once(bit uint) error {
	if *m&(1<<bit) != 0 {
		return errDuplicate
	}
	*m |= 1 << bit
	return nil
}

// read runs read for the key of bit, refusing the key's second appearance.
func (m *seen) read(bit uint, read func() error) error {
	if err := m.once(bit); err != nil {
		return err
	}
	return read()
}
