package pb

import (
	"bytes"
	"errors"
	"testing"
)

func TestWalk(t *testing.T) {
	var b []byte
	b = AppendUint(b, 1, 300)
	b = AppendBytes(b, 2, []byte("hi"))
	b = AppendFixed64(b, 3, 1<<40)
	b = AppendBool(b, 4, true)
	var got []Field
	if err := Walk(b, func(f Field) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d fields", len(got))
	}
	if v, err := got[0].Uint32(); err != nil || v != 300 {
		t.Errorf("field 1 = %d, %v", v, err)
	}
	if v, err := got[1].BytesMax(2); err != nil || string(v) != "hi" {
		t.Errorf("field 2 = %q, %v", v, err)
	}
	if _, err := got[1].BytesMax(1); !errors.Is(err, ErrMalformed) {
		t.Errorf("BytesMax over the limit: %v", err)
	}
	if _, err := got[1].BytesExact(3); !errors.Is(err, ErrMalformed) {
		t.Errorf("BytesExact of the wrong length: %v", err)
	}
	if v, err := got[2].Fixed(); err != nil || v != 1<<40 {
		t.Errorf("field 3 = %d, %v", v, err)
	}
	if v, err := got[3].Bool(); err != nil || !v {
		t.Errorf("field 4 = %v, %v", v, err)
	}
	if _, err := got[1].Uint32(); !errors.Is(err, ErrMalformed) {
		t.Errorf("bytes read as uint32: %v", err)
	}
	big := AppendUint(nil, 1, 1<<32)
	Walk(big, func(f Field) error {
		if _, err := f.Uint32(); !errors.Is(err, ErrMalformed) {
			t.Errorf("2^32 read as uint32: %v", err)
		}
		return nil
	})
}

func TestWalkRejects(t *testing.T) {
	twice := AppendUint(AppendUint(nil, 1, 1), 1, 2)
	if err := Walk(twice, func(Field) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Errorf("repeated singular field: %v", err)
	}
	if err := WalkRepeated(twice, Repeated(1), func(Field) error { return nil }); err != nil {
		t.Errorf("repeated field allowed by mask: %v", err)
	}
	for n := 1; n < len(AppendBytes(nil, 1, []byte("hello"))); n++ {
		b := AppendBytes(nil, 1, []byte("hello"))[:n]
		if err := Walk(b, func(Field) error { return nil }); !errors.Is(err, ErrMalformed) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
	group := []byte{0x0b, 0x0c} // start group 1, end group 1
	if err := Walk(group, func(Field) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Errorf("group: %v", err)
	}
	stop := errors.New("stop")
	if err := Walk(AppendUint(nil, 1, 1), func(Field) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
}

func FuzzWalk(f *testing.F) {
	f.Add(AppendBytes(AppendUint(nil, 1, 7), 2, []byte("x")))
	f.Add([]byte{0x0b, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out []byte
		err := WalkRepeated(b, Repeated(1, 2, 3), func(f Field) error {
			switch f.Type {
			case 0:
				out = AppendUint(out, f.Num, f.Varint)
			case 1:
				out = AppendFixed64(out, f.Num, f.Fixed64)
			case 2:
				out = AppendBytes(out, f.Num, f.Bytes)
			default:
				return nil
			}
			return nil
		})
		if err != nil {
			return
		}
		// What parsed re-encodes to bytes that parse to the same fields.
		var fields, again []Field
		WalkRepeated(b, Repeated(1, 2, 3), func(f Field) error {
			if f.Type <= 2 {
				fields = append(fields, f)
			}
			return nil
		})
		if err := WalkRepeated(out, Repeated(1, 2, 3), func(f Field) error {
			again = append(again, f)
			return nil
		}); err != nil {
			t.Fatalf("re-encoded fields do not parse: %v", err)
		}
		if len(fields) != len(again) {
			t.Fatalf("%d fields became %d", len(fields), len(again))
		}
		for i := range fields {
			a, b := fields[i], again[i]
			if a.Num != b.Num || a.Type != b.Type || a.Varint != b.Varint || a.Fixed64 != b.Fixed64 || !bytes.Equal(a.Bytes, b.Bytes) {
				t.Fatalf("field %d changed: %+v → %+v", i, a, b)
			}
		}
	})
}
