package handler

import (
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// acceptedEncodings names the Content-Encodings a request body may have,
// for the 415 that refuses the others.
const acceptedEncodings = "gzip or identity"

// bodyError is why a request body was refused: the answer's status and
// its message. A 400 names the field at fault: the body.
type bodyError struct {
	status int
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

// respond answers the request with e.
func (e *bodyError) respond(c *gin.Context) {
	body := gin.H{"error": e.msg}
	if e.status == http.StatusBadRequest {
		body["field"] = "body"
	}
	c.JSON(e.status, body)
}

// readBody reads the body of r, decoded as its Content-Encoding says:
// none or identity as it is, gzip (or its alias x-gzip) decompressed;
// anything else, a list included, is refused with 415. At most limit bytes
// are read from the wire, and at most limit bytes once decompressed, so a
// decompression bomb costs no more memory than a plain body: past the
// limit, reading stops and the answer is 413. A body labelled gzip that is
// not gzip is a 400 naming the body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *bodyError) {
	gzipped, berr := contentEncoding(r.Header.Values("Content-Encoding"))
	if berr != nil {
		return nil, berr
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if gzipped {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, readError(err, limit, true)
		}
		defer zr.Close()
		src = http.MaxBytesReader(w, zr, limit)
	}
	body, err := io.ReadAll(src)
	if err != nil {
		return nil, readError(err, limit, gzipped)
	}
	return body, nil
}

// contentEncoding reports whether the Content-Encoding header values name
// gzip, or a 415 when they name anything but gzip or identity.
func contentEncoding(values []string) (gzipped bool, _ *bodyError) {
	switch len(values) {
	case 0:
		return false, nil
	case 1:
		switch strings.ToLower(strings.TrimSpace(values[0])) {
		case "", "identity":
			return false, nil
		case "gzip", "x-gzip":
			return true, nil
		}
	}
	got := strings.Join(values, ", ")
	return false, &bodyError{http.StatusUnsupportedMediaType,
		"Content-Encoding must be " + acceptedEncodings + ", got " + strconv.Quote(truncate(got, 64))}
}

// readError turns an error reading a body into its answer.
func readError(err error, limit int64, gzipped bool) *bodyError {
	var tooBig *http.MaxBytesError
	var corrupt flate.CorruptInputError
	switch {
	case errors.As(err, &tooBig) && gzipped:
		// The limit applies to both sides of the decompression.
		return &bodyError{http.StatusRequestEntityTooLarge, "body is larger than " + strconv.FormatInt(limit, 10) + " bytes, compressed or decompressed"}
	case errors.As(err, &tooBig):
		return &bodyError{http.StatusRequestEntityTooLarge, "body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
	case gzipped && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return &bodyError{http.StatusBadRequest, "body is labelled Content-Encoding: gzip but is not valid gzip data"}
	default:
		return &bodyError{http.StatusBadRequest, "cannot read body"}
	}
}
