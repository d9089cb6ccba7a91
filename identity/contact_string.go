package identity

import (
	"fmt"
	"net/url"
	"strings"
)

// ContactScheme starts a contact string.
const ContactScheme = "peerdrop:"

// ContactString is what a person shares so that others can add them as a
// contact: "peerdrop:ACCOUNT-ID?name=NAME" (without "?name=" when name
// is empty). The name is only a suggestion to the one who adds it.
func ContactString(id AccountID, name string) string {
	s := ContactScheme + id.String()
	if name = CleanName(name, MaxContactName); name != "" {
		s += "?" + url.Values{"name": {name}}.Encode()
	}
	return s
}

// ParseContactString reads a contact string, or a bare account ID, as
// another person gave it: the ID is checked (checksum, not zero) and the
// suggested name cleaned and bounded.
func ParseContactString(s string) (AccountID, string, error) {
	s = strings.TrimSpace(s)
	rest, _ := strings.CutPrefix(s, ContactScheme)
	idText, query, _ := strings.Cut(rest, "?")
	id, err := ParseAccountID(idText)
	if err == nil && id.IsZero() {
		err = fmt.Errorf("%w: zero account ID", ErrInvalidID)
	}
	if err != nil {
		return AccountID{}, "", err
	}
	var name string
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return AccountID{}, "", fmt.Errorf("%w: contact string: %v", ErrInvalidID, err)
		}
		name = CleanName(q.Get("name"), MaxContactName)
	}
	return id, name, nil
}
