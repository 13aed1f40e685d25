package store

import (
	stdjson "encoding/json"
	"reflect"

	json "github.com/goccy/go-json"
)

// decode reads a record written by this store into v, a pointer. It uses
// goccy/go-json, the store's codec, on the path where the data is what the
// store wrote; a record it refuses, or that makes it panic (it does, from
// pooled state, after malformed inputs), is decoded again from scratch by
// encoding/json, whose result is returned.
func decode(data []byte, v any) (err error) {
	defer func() {
		if recover() != nil {
			err = decodeStd(data, v)
		}
	}()
	if json.Unmarshal(data, v) != nil {
		return decodeStd(data, v)
	}
	return nil
}

func decodeStd(data []byte, v any) error {
	reflect.ValueOf(v).Elem().SetZero() // drop what the first decoder left
	return stdjson.Unmarshal(data, v)
}
