package compose_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/emailconn/emailconn/internal/compose"
)

func ExampleValidateEnvelope() {
	for _, addr := range []string{
		"alerts@example.com",
		"a@example.com> RET=FULL",
		`"x> ORCPT=rfc822;a@evil.test"@example.com`,
		"jürgen@beispiel.de",
	} {
		smtpUTF8 := false
		fmt.Println(compose.ValidateEnvelope(addr, smtpUTF8))
	}
	fmt.Println(compose.ValidateEnvelope("jürgen@beispiel.de", compose.NeedsSMTPUTF8("jürgen@beispiel.de")))
	// Output:
	// <nil>
	// address "a@example.com> RET=FULL": contains ">"
	// address "\"x> ORCPT=rfc822;a@evil.test\"@example.com": contains '"' (quoted local parts are not supported)
	// address "jürgen@beispiel.de": contains non-ASCII characters, which need SMTPUTF8
	// <nil>
}

func ExampleNewCanonicalWriter() {
	var data bytes.Buffer
	w := compose.NewCanonicalWriter(&data)
	// A bare CR would pass go-smtp's DotWriter unchanged.
	w.Write([]byte("x\r.\rSMUGGLED\r"))
	w.Write([]byte("\nunix line\n"))
	w.Close()
	fmt.Printf("%q\n", data.String())

	_, err := compose.NewCanonicalWriter(&data).Write([]byte("a\x00b"))
	fmt.Println(err, errors.Is(err, compose.ErrNUL))

	long := strings.Repeat("x", compose.MaxLineLength+1)
	_, err = compose.NewCanonicalWriter(&data).Write([]byte(long))
	fmt.Println(errors.Is(err, compose.ErrLineTooLong))
	// Output:
	// "x\r\n.\r\nSMUGGLED\r\nunix line\r\n"
	// message contains a NUL octet true
	// true
}

func ExampleMessage_WriteTo() {
	m := &compose.Message{
		From:      &mail.Address{Name: "Workflow Engine", Address: "engine@example.com"},
		To:        []*mail.Address{{Name: "Jürgen Müller", Address: "juergen@example.com"}},
		Subject:   "Genehmigung erforderlich: Überstunden",
		Text:      "Please approve.\n",
		Headers:   []compose.Header{{Key: "X-Workflow-Id", Value: "PayrollApproval/42"}},
		Date:      time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC),
		MessageID: "20261127.42@engine.example.com",
	}
	size, _ := m.EstimatedSize()
	var out bytes.Buffer
	n, err := m.WriteTo(&out)
	// Lines end in CRLF; print them with LF.
	fmt.Print(strings.ReplaceAll(out.String(), "\r\n", "\n"))
	fmt.Println(n, size, err)
	// Output:
	// Date: Fri, 27 Nov 2026 09:30:00 +0000
	// From: "Workflow Engine" <engine@example.com>
	// To: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.com>
	// Subject: =?utf-8?q?Genehmigung_erforderlich:_=C3=9Cberstunden?=
	// Message-ID: <20261127.42@engine.example.com>
	// X-Workflow-Id: PayrollApproval/42
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: quoted-printable
	//
	// Please approve.
	// 418 418 <nil>
}

func ExampleMessage_Validate() {
	m := &compose.Message{
		From:    &mail.Address{Address: "engine@example.com"},
		To:      []*mail.Address{{Address: "a@example.com> NOTIFY=SUCCESS"}},
		Subject: "Hello\r\nBcc: victim@example.com",
		Headers: []compose.Header{{Key: "Bcc", Value: "victim@example.com"}},
		Date:    time.Now(),
	}
	err := m.Validate()
	fmt.Println(err)
	var fe *compose.FieldError
	if errors.As(err, &fe) {
		fmt.Println("first field:", fe.Field)
	}
	var ae *compose.AddressError
	if errors.As(err, &ae) {
		fmt.Printf("address: %q\n", ae.Addr)
	}
	// Output:
	// MessageID: is required
	// To[0]: address "a@example.com> NOTIFY=SUCCESS": contains ">"
	// Subject: contains CR or LF
	// Headers["Bcc"]: cannot be set: a Bcc field would show the blind copies to every recipient (put them in Bcc, which goes to the envelope only)
	// first field: MessageID
	// address: "a@example.com> NOTIFY=SUCCESS"
}

func ExampleMessage_EstimatedSize() {
	pdf := strings.Repeat("%PDF", 1000)
	m := &compose.Message{
		From:        &mail.Address{Address: "engine@example.com"},
		To:          []*mail.Address{{Address: "ops@example.com"}},
		Subject:     "Report",
		Text:        "Attached.",
		Attachments: []compose.Attachment{{Filename: "report.pdf", Content: strings.NewReader(pdf), Size: int64(len(pdf))}},
		Date:        time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC),
		MessageID:   "report.1@engine.example.com",
	}
	size, ok := m.EstimatedSize()
	var out bytes.Buffer
	n, _ := m.WriteTo(&out)
	fmt.Println(ok, size == n)
	// Output:
	// true true
}
