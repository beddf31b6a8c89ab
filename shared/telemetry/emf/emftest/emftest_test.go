package emftest

import (
	"fmt"
	"strings"
	"testing"
)

// TestValidate: the specification's own example passes; documents that
// break the schema or the rules on target members are refused, naming
// what is wrong.
func TestValidate(t *testing.T) {
	doc := func(directive, members string) string {
		return `{"_aws":{"Timestamp":1574109732004,"CloudWatchMetrics":[` + directive + `]}` + members + `}`
	}
	good := `{"Namespace":"lambda-function-metrics","Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time","Unit":"Milliseconds","StorageResolution":60}]}`
	d, err := Validate([]byte(doc(good, `,"functionVersion":"$LATEST","time":100,"requestId":"989ffbf8"`)))
	if err != nil || d.Values["time"][0] != 100 || d.DimValues["functionVersion"] != "$LATEST" {
		t.Fatalf("the specification's example: %+v, %v", d, err)
	}
	dims := make([]string, 31)
	for i := range dims {
		dims[i] = fmt.Sprintf("%q", fmt.Sprint("d", i))
	}
	hundredOne := strings.Repeat("1,", 100) + "1"
	for _, tt := range []struct{ name, line, want string }{
		{"no _aws", `{"time":1}`, `"_aws" is missing`},
		{"timestamp not an integer", `{"_aws":{"Timestamp":1.5,"CloudWatchMetrics":[]}}`, "type integer"},
		{"member of _aws", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[],"Other":1}}`, `"Other" is not allowed`},
		{"no namespace", doc(`{"Dimensions":[[]],"Metrics":[]}`, ""), `"Namespace" is missing`},
		{"empty dimensions", doc(`{"Namespace":"n","Dimensions":[],"Metrics":[]}`, ""), "at least 1"},
		{"31 dimensions", doc(`{"Namespace":"n","Dimensions":[[`+strings.Join(dims, ",")+`]],"Metrics":[]}`, ""), "at most 30"},
		{"bad unit", doc(`{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"t","Unit":"ms"}]}`, `,"t":1`), "does not match"},
		{"missing metric target", doc(`{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"t"}]}`, ""), `metric "t"`},
		{"string metric", doc(`{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"t"}]}`, `,"t":"1"`), `metric "t"`},
		{"101 values", doc(`{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"t"}]}`, `,"t":[`+hundredOne+`]`), `metric "t"`},
		{"missing dimension target", doc(`{"Namespace":"n","Dimensions":[["A"]],"Metrics":[]}`, ""), `dimension "A"`},
		{"numeric dimension", doc(`{"Namespace":"n","Dimensions":[["A"]],"Metrics":[]}`, `,"A":1`), `dimension "A"`},
		{"101 metrics", doc(`{"Namespace":"n","Dimensions":[[]],"Metrics":[`+strings.Repeat(`{"Name":"t"},`, 100)+`{"Name":"t"}]}`, ""), "at most 100"},
		{"trailing data", doc(good, `,"functionVersion":"1","time":1`) + " x", "after the JSON"},
	} {
		if _, err := Validate([]byte(tt.line)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestFind: only the lines with "_aws" are read; a bad one is an error.
func TestFind(t *testing.T) {
	out := "plain text\n{\"msg\":\"a log line\"}\n" +
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"a"}]}]},"a":[1,2]}` + "\n"
	docs, err := Find(out)
	if err != nil || len(docs) != 1 || len(docs[0].Values["a"]) != 2 {
		t.Fatalf("Find = %+v, %v; want one document with a = [1 2]", docs, err)
	}
	if _, err := Find(`{"_aws":{}}`); err == nil {
		t.Error("Find of a bad EMF line: no error")
	}
}
