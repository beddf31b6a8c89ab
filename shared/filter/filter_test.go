package filter

import (
	"errors"
	"strings"
	"testing"
)

type record struct {
	pk   string
	data string
}

// matchCase is one pattern set and records it must and must not pass.
type matchCase struct {
	name     string
	patterns []string
	match    []record
	miss     []record
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.patterns)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.patterns, err)
			}
			for _, r := range tc.match {
				if !f.Match(r.pk, []byte(r.data)) {
					t.Errorf("Match(%q, %s): got false, want true", r.pk, r.data)
				}
			}
			for _, r := range tc.miss {
				if f.Match(r.pk, []byte(r.data)) {
					t.Errorf("Match(%q, %s): got true, want false", r.pk, r.data)
				}
			}
		})
	}
}

// d is a record with partition key "1" and the given data.
func d(data string) record { return record{"1", data} }

// TestLambdaExamples takes the patterns of Lambda's developer guide:
// https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
// (the "Filter rule syntax" table, with each rule under "data", and the
// filtering examples) and
// https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis-filtering.html.
func TestLambdaExamples(t *testing.T) {
	runMatchCases(t, []matchCase{{
		name:     "kinesis page: order type is buy",
		patterns: []string{`{ "data" : { "order" : { "type" : [ "buy" ] } } }`},
		match:    []record{d(`{"record": 12345, "order": {"type": "buy", "stock": "ANYCO", "quantity": 1000}}`)},
		miss: []record{
			d(`{"record": 12346, "order": {"type": "sell", "stock": "ANYCO", "quantity": 1000}}`),
			d(`{"record": 12347, "type": "buy"}`),
		},
	}, {
		name:     "filtering example: partitionKey and Location",
		patterns: []string{`{ "partitionKey": [ "1" ], "data": { "Location": [ "Los Angeles" ] }}`},
		match:    []record{{"1", `{"City":"Los Angeles","Location":"Los Angeles"}`}},
		miss: []record{
			{"2", `{"Location":"Los Angeles"}`},
			{"1", `{"Location":"Seattle"}`},
		},
	}, {
		name:     "filtering example: Temperature > 50 and <= 60",
		patterns: []string{`{ "data": { "Temperature": [ {"numeric": [ ">", 50, "<=", 60 ] } ] } }`},
		match:    []record{d(`{"Temperature": 51}`), d(`{"Temperature": 60}`), d(`{"Temperature": 55.5}`)},
		// The guide's sample event has "Temperature": "46", a string:
		// numeric rules match numbers only.
		miss: []record{d(`{"Temperature": 50}`), d(`{"Temperature": 60.01}`), d(`{"Temperature": "55"}`), d(`{"City": "Seattle"}`)},
	}, {
		name:     "multi-level filtering, nested as in the DynamoDB example",
		patterns: []string{`{ "data": { "Keys": { "Id": { "N": [ "101" ] } } } }`},
		match:    []record{d(`{"Keys": {"Id": {"N": "101"}}, "NewImage": {"Message": {"S": "New item!"}}}`)},
		miss:     []record{d(`{"Keys": {"Id": {"N": "102"}}}`), d(`{"Keys": {"N": "101"}}`), d(`{"Id": {"N": "101"}}`)},
	}, {
		name:     "null: UserID is null",
		patterns: []string{`{"data": {"UserID": [ null ]}}`},
		match:    []record{d(`{"UserID": null}`)},
		miss:     []record{d(`{"UserID": "null"}`), d(`{"UserID": ""}`), d(`{}`)},
	}, {
		name:     "empty: LastName is empty",
		patterns: []string{`{"data": {"LastName": [""]}}`},
		match:    []record{d(`{"LastName": ""}`)},
		miss:     []record{d(`{"LastName": null}`), d(`{"LastName": " "}`), d(`{}`)},
	}, {
		name:     "equals: Name is Alice",
		patterns: []string{`{"data": {"Name": [ "Alice" ]}}`},
		match:    []record{d(`{"Name": "Alice"}`)},
		miss:     []record{d(`{"Name": "alice"}`), d(`{"Name": "Alice "}`), d(`{"name": "Alice"}`)},
	}, {
		name:     "equals (ignore case): Name is Alice",
		patterns: []string{`{"data": {"Name": [ { "equals-ignore-case": "alice" } ]}}`},
		match:    []record{d(`{"Name": "Alice"}`), d(`{"Name": "ALICE"}`), d(`{"Name": "alice"}`)},
		miss:     []record{d(`{"Name": "Dalice"}`), d(`{"Name": "Alicia"}`)},
	}, {
		name:     "and: Location is New York and Day is Monday",
		patterns: []string{`{"data": {"Location": [ "New York" ], "Day": ["Monday"]}}`},
		match:    []record{d(`{"Location": "New York", "Day": "Monday"}`)},
		miss:     []record{d(`{"Location": "New York", "Day": "Tuesday"}`), d(`{"Location": "New York"}`)},
	}, {
		name:     "or: PaymentType is Credit or Debit",
		patterns: []string{`{"data": {"PaymentType": [ "Credit", "Debit"]}}`},
		match:    []record{d(`{"PaymentType": "Credit"}`), d(`{"PaymentType": "Debit"}`)},
		miss:     []record{d(`{"PaymentType": "Cash"}`), d(`{"PaymentType": null}`)},
	}, {
		name:     "or (multiple fields): Location is New York, or Day is Monday",
		patterns: []string{`{"data": {"$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ]}}`},
		match:    []record{d(`{"Location": "New York", "Day": "Sunday"}`), d(`{"Location": "Paris", "Day": "Monday"}`), d(`{"Day": "Monday"}`)},
		miss:     []record{d(`{"Location": "Paris", "Day": "Sunday"}`), d(`{}`)},
	}, {
		name:     "not: Weather is anything but Raining",
		patterns: []string{`{"data": {"Weather": [ { "anything-but": [ "Raining" ] } ]}}`},
		match:    []record{d(`{"Weather": "Sunny"}`), d(`{"Weather": "raining"}`)},
		miss:     []record{d(`{"Weather": "Raining"}`), d(`{"Temperature": 20}`)},
	}, {
		name:     "numeric (equals): Price is 100",
		patterns: []string{`{"data": {"Price": [ { "numeric": [ "=", 100 ] } ]}}`},
		match:    []record{d(`{"Price": 100}`), d(`{"Price": 100.0}`), d(`{"Price": 1e2}`)},
		miss:     []record{d(`{"Price": 100.5}`), d(`{"Price": "100"}`)},
	}, {
		name:     "numeric (range): Price is more than 10, and less than or equal to 20",
		patterns: []string{`{"data": {"Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ]}}`},
		match:    []record{d(`{"Price": 10.01}`), d(`{"Price": 20}`)},
		miss:     []record{d(`{"Price": 10}`), d(`{"Price": 20.5}`), d(`{"Price": -15}`)},
	}, {
		name:     "exists: ProductName exists",
		patterns: []string{`{"data": {"ProductName": [ { "exists": true } ]}}`},
		match:    []record{d(`{"ProductName": "Widget"}`), d(`{"ProductName": null}`), d(`{"ProductName": ["a"]}`)},
		miss:     []record{d(`{"Name": "Widget"}`), d(`{}`)},
	}, {
		name:     "does not exist: ProductName does not exist",
		patterns: []string{`{"data": {"ProductName": [ { "exists": false } ]}}`},
		match:    []record{d(`{"Name": "Widget"}`), d(`{}`)},
		miss:     []record{d(`{"ProductName": "Widget"}`), d(`{"ProductName": null}`)},
	}, {
		name:     "begins with: Region is in the US",
		patterns: []string{`{"data": {"Region": [ {"prefix": "us-" } ]}}`},
		match:    []record{d(`{"Region": "us-east-1"}`), d(`{"Region": "us-"}`)},
		miss:     []record{d(`{"Region": "eu-west-1"}`), d(`{"Region": "US-EAST-1"}`), d(`{"Region": "u"}`)},
	}, {
		name:     "ends with: FileName ends with a .png extension",
		patterns: []string{`{"data": {"FileName": [ { "suffix": ".png" } ]}}`},
		match:    []record{d(`{"FileName": "cat.png"}`), d(`{"FileName": ".png"}`)},
		miss:     []record{d(`{"FileName": "cat.PNG"}`), d(`{"FileName": "png"}`), d(`{"FileName": "cat.png.gz"}`)},
	}, {
		// "For numbers, Lambda also uses string representation. For
		// example, 300, 300.0, and 3.0e2 are not considered equal."
		name:     "numbers match exactly as written",
		patterns: []string{`{"data": {"n": [ 300 ]}}`},
		match:    []record{d(`{"n": 300}`)},
		miss:     []record{d(`{"n": 300.0}`), d(`{"n": 3.0e2}`), d(`{"n": "300"}`)},
	}, {
		// "If a pattern contains duplicate keys with different values,
		// Lambda uses only the last value for that key."
		name:     "duplicate keys: the last wins",
		patterns: []string{`{"partitionKey": ["1"], "data": {"duplicateKey": ["hello"], "uniqueKey": ["test123"], "duplicateKey": ["world"]}}`},
		match:    []record{d(`{"duplicateKey": "world", "uniqueKey": "test123"}`)},
		miss:     []record{d(`{"duplicateKey": "hello", "uniqueKey": "test123"}`)},
	}, {
		// "Your filters are logically ORed together."
		name: "filters are ORed",
		patterns: []string{
			`{"data": {"type": ["buy"]}}`,
			`{"partitionKey": [{"prefix": "vip-"}]}`,
		},
		match: []record{{"x", `{"type": "buy"}`}, {"vip-7", `{"type": "sell"}`}, {"vip-7", `not json`}},
		miss:  []record{{"x", `{"type": "sell"}`}, {"x", `not json`}},
	}})
}

// TestNonJSONData checks the table "Properly filtering Kinesis and
// DynamoDB messages" (invocation-eventfiltering.html): data that is not
// JSON drops the record for a pattern with data properties, and is
// filtered on the other (metadata) properties by a pattern without.
func TestNonJSONData(t *testing.T) {
	notJSON := []string{
		``, `hello`, `{"a":1`, `{"a":1}x`, `{"a":1}{}`, `{'a':1}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
		`{"a":"\x01"}`, `{"a":"\q"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a" 1}`, `{"a":1,}`, `[1,]`,
		"\x00", `{"a":[1 2]}`, `{a:1}`, `{"a":1 "b":2}`,
		// JSON, but not an object: there are no fields to match.
		`"text"`, `123`, `[{"type":"buy"}]`, `null`,
	}
	dataPat, err := Parse([]string{`{"data": {"type": [{"exists": false}]}}`})
	if err != nil {
		t.Fatal(err)
	}
	orPat, err := Parse([]string{`{"$or": [{"partitionKey": ["1"]}, {"data": {"type": ["buy"]}}]}`})
	if err != nil {
		t.Fatal(err)
	}
	pkPat, err := Parse([]string{`{"partitionKey": ["1"]}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range notJSON {
		if dataPat.Match("1", []byte(data)) {
			t.Errorf("data pattern, data %q: got match, want none (not a JSON object)", data)
		}
		if orPat.Match("1", []byte(data)) {
			t.Errorf("$or with a data alternative, data %q: got match, want none (the pattern has data properties)", data)
		}
		if !pkPat.Match("1", []byte(data)) {
			t.Errorf("partitionKey pattern, data %q: got no match, want one (metadata only)", data)
		}
	}
	for _, data := range []string{`{}`, ` { } `, "\n{\"b\":[1,{\"c\":[]}]}\t"} {
		if !dataPat.Match("1", []byte(data)) {
			t.Errorf("exists false, data %q: got no match, want one", data)
		}
	}
}

func TestEdgeCases(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 50) + `"x"` + strings.Repeat(`}`, 50)
	deepPat := `{"data":` + strings.Repeat(`{"a":`, 50) + `["x"]` + strings.Repeat(`}`, 50) + `}`
	runMatchCases(t, []matchCase{{
		name:     "nil-safe: missing field and null",
		patterns: []string{`{"data": {"a": {"b": ["x"]}}}`},
		match:    []record{d(`{"a": {"b": "x"}}`)},
		miss:     []record{d(`{}`), d(`{"a": null}`), d(`{"a": {"b": null}}`), d(`{"a": "x"}`), d(`{"a": {}}`), d(`{"b": "x"}`)},
	}, {
		name:     "numbers as strings and strings as numbers",
		patterns: []string{`{"data": {"n": ["7"], "m": [7]}}`},
		match:    []record{d(`{"n": "7", "m": 7}`)},
		miss:     []record{d(`{"n": 7, "m": 7}`), d(`{"n": "7", "m": "7"}`)},
	}, {
		name:     "booleans",
		patterns: []string{`{"data": {"ok": [true]}}`},
		match:    []record{d(`{"ok": true}`), d(`{"ok": [false, true]}`)},
		miss:     []record{d(`{"ok": false}`), d(`{"ok": "true"}`), d(`{"ok": 1}`)},
	}, {
		name:     "deep nesting",
		patterns: []string{deepPat},
		match:    []record{d(deep)},
		miss:     []record{d(strings.Replace(deep, `"x"`, `"y"`, 1)), d(deep[5 : len(deep)-1])},
	}, {
		name:     "arrays: a value matches if any element does",
		patterns: []string{`{"data": {"tags": ["red"], "n": [{"numeric": [">", 10]}]}}`},
		match:    []record{d(`{"tags": ["blue", "red"], "n": [1, 20]}`), d(`{"tags": [["red"]], "n": 11}`)},
		miss:     []record{d(`{"tags": ["blue"], "n": [20]}`), d(`{"tags": [], "n": [20]}`), d(`{"tags": ["red"], "n": []}`)},
	}, {
		name:     "arrays of objects: fields of one object, one element at a time",
		patterns: []string{`{"data": {"items": {"sku": ["A"], "qty": [{"numeric": [">=", 5]}]}}}`},
		match:    []record{d(`{"items": [{"sku": "B", "qty": 9}, {"sku": "A", "qty": 5}]}`), d(`{"items": {"sku": "A", "qty": 6}}`)},
		miss:     []record{d(`{"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 9}]}`), d(`{"items": []}`)},
	}, {
		name:     "anything-but: any value not listed, numbers as written; absent fails",
		patterns: []string{`{"data": {"s": [{"anything-but": ["a", 1]}]}}`},
		match:    []record{d(`{"s": "b"}`), d(`{"s": 2}`), d(`{"s": "1"}`), d(`{"s": 1.0}`), d(`{"s": null}`), d(`{"s": ["a", "b"]}`)},
		miss:     []record{d(`{"s": "a"}`), d(`{"s": 1}`), d(`{"s": ["a", 1]}`), d(`{}`), d(`{"s": []}`), d(`{"s": {"t": 2}}`)},
	}, {
		name:     "anything-but a single string or number",
		patterns: []string{`{"data": {"s": [{"anything-but": "init"}], "n": [{"anything-but": 0}]}}`},
		match:    []record{d(`{"s": "run", "n": 1}`)},
		miss:     []record{d(`{"s": "init", "n": 1}`), d(`{"s": "run", "n": 0}`)},
	}, {
		name:     "exists concerns values, not objects or empty lists",
		patterns: []string{`{"data": {"a": [{"exists": true}]}}`},
		match:    []record{d(`{"a": 0}`), d(`{"a": [{"b": 1}, 2]}`)},
		miss:     []record{d(`{"a": {"b": 1}}`), d(`{"a": []}`), d(`{"a": [{}]}`)},
	}, {
		name:     "exists false in a nested object holds when the parent is absent",
		patterns: []string{`{"data": {"a": {"b": [{"exists": false}]}, "c": ["x"]}}`},
		match:    []record{d(`{"c": "x"}`), d(`{"a": 5, "c": "x"}`), d(`{"a": {"z": 1}, "c": "x"}`)},
		miss:     []record{d(`{"a": {"b": 1}, "c": "x"}`), d(`{"a": {"b": null}, "c": "x"}`), d(`{}`)},
	}, {
		name:     "exists false or a value",
		patterns: []string{`{"data": {"v": [{"exists": false}, "x"]}}`},
		match:    []record{d(`{}`), d(`{"v": "x"}`)},
		miss:     []record{d(`{"v": "y"}`)},
	}, {
		name:     "numeric bounds, one-sided and negative",
		patterns: []string{`{"data": {"a": [{"numeric": ["<", 0]}], "b": [{"numeric": [">=", -1.5]}], "c": [{"numeric": ["<=", 1e3]}]}}`},
		match:    []record{d(`{"a": -0.1, "b": -1.5, "c": 1000}`), d(`{"a": -1e400, "b": 1e400, "c": -5}`)},
		miss:     []record{d(`{"a": 0, "b": 0, "c": 0}`), d(`{"a": -1, "b": -1.51, "c": 0}`), d(`{"a": -1, "b": 0, "c": 1000.5}`)},
	}, {
		name:     "$or nested under data and beside other fields",
		patterns: []string{`{"data": {"kind": ["order"], "order": {"$or": [{"type": ["buy"]}, {"qty": [{"numeric": [">", 100]}]}]}}}`},
		match:    []record{d(`{"kind": "order", "order": {"type": "buy"}}`), d(`{"kind": "order", "order": {"type": "sell", "qty": 500}}`)},
		miss:     []record{d(`{"kind": "order", "order": {"type": "sell", "qty": 5}}`), d(`{"kind": "quote", "order": {"type": "buy"}}`)},
	}, {
		name:     "$or at the top, over partitionKey and data",
		patterns: []string{`{"$or": [{"partitionKey": ["vip"]}, {"data": {"priority": ["high"]}}]}`},
		match:    []record{{"vip", `{}`}, {"x", `{"priority": "high"}`}},
		miss:     []record{{"x", `{"priority": "low"}`}},
	}, {
		name: "patterns sharing paths",
		patterns: []string{
			`{"data": {"order": {"type": ["buy"]}}}`,
			`{"data": {"order": {"stock": [{"prefix": "AN"}]}, "record": [{"numeric": [">", 5]}]}}`,
			`{"data": {"order": ["flat"]}}`,
		},
		match: []record{d(`{"order": {"type": "buy"}}`), d(`{"order": {"type": "sell", "stock": "ANYCO"}, "record": 6}`), d(`{"order": "flat"}`)},
		miss:  []record{d(`{"order": {"type": "sell", "stock": "ANYCO"}, "record": 5}`), d(`{"order": {"type": "flat"}}`)},
	}, {
		name:     "escaped strings and keys in data",
		patterns: []string{`{"data": {"na\"me": ["caf\u00e9 \ud83d\ude00\n"], "p": [{"prefix": "a/b"}]}}`},
		match:    []record{d(`{"na\u0022me": "caf\u00e9 \uD83D\uDE00\n", "p": "a\/bc"}`), d(`{"na\"me": "café 😀\n", "p": "a/b"}`)},
		miss:     []record{d(`{"na\"me": "cafe \ud83d\ude00\n", "p": "a/b"}`), d(`{"name": "café 😀\n", "p": "a/b"}`)},
	}, {
		name:     "long escaped string",
		patterns: []string{`{"data": {"s": [{"suffix": "\tend"}]}}`},
		match:    []record{d(`{"s": "` + strings.Repeat(`\u0041`, 300) + `\tend"}`)},
		miss:     []record{d(`{"s": "` + strings.Repeat(`\u0041`, 300) + `end"}`)},
	}, {
		name:     "equals-ignore-case beyond ASCII",
		patterns: []string{`{"data": {"city": [{"equals-ignore-case": "ZÜRICH"}]}}`},
		match:    []record{d(`{"city": "zürich"}`)},
		miss:     []record{d(`{"city": "zurich"}`)},
	}, {
		name:     "partitionKey: prefix, suffix, anything-but, ignore case",
		patterns: []string{`{"partitionKey": [{"prefix": "eu-"}, {"suffix": "-9"}, {"equals-ignore-case": "ADMIN"}]}`, `{"partitionKey": [{"anything-but": ["a", "b"]}], "data": {"x": [1]}}`},
		match:    []record{{"eu-1", `{}`}, {"us-9", ``}, {"admin", ``}, {"c", `{"x": 1}`}},
		miss:     []record{{"us-1", `{}`}, {"a", `{"x": 1}`}, {"c", `{"x": 2}`}, {"c", `x`}},
	}, {
		name:     "a long partition key",
		patterns: []string{`{"partitionKey": [{"suffix": "z"}]}`},
		match:    []record{{strings.Repeat("é", 256) + "z", ``}},
		miss:     []record{{strings.Repeat("é", 256), ``}},
	}, {
		name:     "fields beside the pattern's are checked for syntax only",
		patterns: []string{`{"data": {"a": ["x"]}}`},
		match:    []record{d(`{"z": {"y": [1, 2.5e-3, -0, true, false, null, "s\"\\\/\b\f\n\r\t\u00FF"]}, "a": "x", "b": {}}`)},
		miss:     []record{d(`{"z": {"y": [1, 2.5e-3, -0, true, false, null, "s\"\\\/\b\f\n\r\t\u00FF]}, "a": "x", "b": {}}`)},
	}, {
		name:     "more slots than the stack array holds",
		patterns: []string{manySlots(0, 60), manySlots(60, 60), manySlots(120, 60), manySlots(180, 60), manySlots(240, 60)},
		match:    []record{d(`{"f299": "v"}`), d(`{"f0": "v"}`), d(`{"f150": "v"}`)},
		miss:     []record{d(`{"f300": "v"}`)},
	}})
}

// manySlots is a pattern matching any field from f<from> to f<from+n-1>
// with the value "v".
func manySlots(from, n int) string {
	var b strings.Builder
	b.WriteString(`{"data": {"$or": [`)
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteString(",")
		}
		b.WriteString(`{"f` + itoa(i) + `": ["v"]}`)
	}
	b.WriteString(`]}}`)
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestNoPatterns(t *testing.T) {
	for _, patterns := range [][]string{nil, {}} {
		f, err := Parse(patterns)
		if err != nil {
			t.Fatalf("Parse(%q): %v", patterns, err)
		}
		if f != nil {
			t.Fatalf("Parse(%q): got %v, want a nil *Filter", patterns, f)
		}
		if !f.Match("k", []byte("not json")) {
			t.Errorf("nil Filter: got no match, want every record to match")
		}
	}
}

func TestDeepData(t *testing.T) {
	f, err := Parse([]string{`{"data": {"a": [{"exists": false}]}}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		depth int
		want  bool
	}{{maxDepth, true}, {maxDepth + 1, false}} {
		data := strings.Repeat(`{"b":`, tc.depth-1) + "[]" + strings.Repeat("}", tc.depth-1)
		if got := f.Match("k", []byte(data)); got != tc.want {
			t.Errorf("data nested %d deep: got %v, want %v", tc.depth, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []string
		want     string // the whole message, or a part of it after "..."
	}{
		{"unknown operator", []string{`{"partitionKey":["a"]}`, `{"data":{"x":[{"prefx":"a"}]}}`},
			`-filter 2 {"data":{"x":[{"prefx":"a"}]}}: data.x[0].prefx: unknown operator "prefx": allowed prefix, suffix, anything-but, numeric, exists, equals-ignore-case, or a list of values`},
		{"too many", []string{"{}", "{}", "{}", "{}", "{}", "{}"}, `-filter: 6 patterns: Lambda allows at most 5 filters per event source mapping`},
		{"too long", []string{`{"data":{"a":["` + strings.Repeat("x", MaxPatternLen) + `"]}}`}, `...: 4115 characters: Lambda allows at most 4096 per pattern`},
		{"not JSON", []string{`{"data":`}, `-filter 1 {"data":: not JSON: unexpected EOF; want a JSON object such as {"data":{"type":["buy"]}}`},
		{"trailing text", []string{`{"data":{"a":[1]}} x`}, `...: not JSON: text after the pattern object`},
		{"not an object", []string{`["a"]`}, `-filter 1 ["a"]: not a JSON object`},
		{"empty pattern", []string{`{}`}, `-filter 1 {}: empty pattern: it needs at least one of data, partitionKey or $or; to match every record, give no -filter`},
		{"unknown top-level key", []string{`{"sequenceNumber":["1"]}`}, `-filter 1 {"sequenceNumber":["1"]}: sequenceNumber: unknown key "sequenceNumber": allowed data (the record's data, as JSON), partitionKey or $or`},
		{"kinesis envelope key", []string{`{"kinesis":{"data":{"a":[1]}}}`}, `...: kinesis: unknown key "kinesis"`},
		{"data as a list", []string{`{"data":["x"]}`}, `...: data: must be an object of data fields`},
		{"empty data", []string{`{"data":{}}`}, `...: data: empty object: give at least one field, or leave data out`},
		{"partitionKey as an object", []string{`{"partitionKey":{"a":["x"]}}`}, `...: partitionKey: must be a list of rules`},
		{"a scalar field", []string{`{"data":{"a":"x"}}`}, `...: data.a: must be a list of rules, such as ["buy"], or an object of nested fields`},
		{"empty list", []string{`{"data":{"a":[]}}`}, `...: data.a: empty list: it matches nothing`},
		{"list in list", []string{`{"data":{"a":[["x"]]}}`}, `...: data.a[0]: a list inside a list`},
		{"two operators", []string{`{"data":{"a":[{"prefix":"x","suffix":"y"}]}}`}, `...: data.a[0]: an operator object takes exactly one operator, got 2`},
		{"prefix of a number", []string{`{"data":{"a":[{"prefix":1}]}}`}, `...: data.a[0].prefix: prefix takes a string`},
		{"prefix ignoring case", []string{`{"data":{"a":[{"prefix":{"equals-ignore-case":"x"}}]}}`}, `...: data.a[0].prefix: prefix takes a string here: the nested forms (such as {"equals-ignore-case": ...}) are EventBridge's, not in Lambda's filter rule syntax`},
		{"wildcard", []string{`{"data":{"a":[{"wildcard":"x*"}]}}`}, `...: data.a[0].wildcard: operator "wildcard" is not in Lambda's filter rule syntax: allowed prefix`},
		{"cidr", []string{`{"data":{"ip":[{"cidr":"10.0.0.0/8"}]}}`}, `...: operator "cidr" is not in Lambda's filter rule syntax`},
		{"anything-but prefix", []string{`{"data":{"a":[{"anything-but":{"prefix":"x"}}]}}`}, `...: data.a[0].anything-but: anything-but with an operator (prefix, suffix, equals-ignore-case, wildcard) is EventBridge's, not in Lambda's filter rule syntax`},
		{"anything-but null", []string{`{"data":{"a":[{"anything-but":[null]}]}}`}, `...: data.a[0].anything-but[0]: anything-but takes a string, a number, or a list of them`},
		{"anything-but empty", []string{`{"data":{"a":[{"anything-but":[]}]}}`}, `...: anything-but takes a string, a number, or a non-empty list of them`},
		{"exists string", []string{`{"data":{"a":[{"exists":"yes"}]}}`}, `...: data.a[0].exists: exists takes true or false`},
		{"numeric odd", []string{`{"data":{"a":[{"numeric":[">"]}]}}`}, `...: data.a[0].numeric: numeric takes ["=", x] or one or two bounds`},
		{"numeric string bound", []string{`{"data":{"a":[{"numeric":[">","5"]}]}}`}, `...: data.a[0].numeric[1]: > takes a number, got "5"`},
		{"numeric unknown op", []string{`{"data":{"a":[{"numeric":["!=",5]}]}}`}, `...: data.a[0].numeric[0]: unknown comparison "!="`},
		{"numeric two lower", []string{`{"data":{"a":[{"numeric":[">",1,">=",2]}]}}`}, `...: data.a[0].numeric[2]: two lower bounds`},
		{"numeric eq with bound", []string{`{"data":{"a":[{"numeric":["=",1,"<",2]}]}}`}, `...: data.a[0].numeric: "=" stands alone`},
		{"numeric empty range", []string{`{"data":{"a":[{"numeric":[">",5,"<",5]}]}}`}, `...: data.a[0].numeric: the range is empty: no number is > 5 and < 5`},
		{"numeric huge", []string{`{"data":{"a":[{"numeric":[">",1e999]}]}}`}, `...: data.a[0].numeric[1]: 1e999 is out of range for a number`},
		{"partitionKey number", []string{`{"partitionKey":[1]}`}, `-filter 1 {"partitionKey":[1]}: partitionKey: 1 never equals a string: the partition key is a string, always present`},
		{"partitionKey numeric", []string{`{"partitionKey":[{"numeric":[">",1]}]}`}, `...: partitionKey: numeric never holds`},
		{"partitionKey exists false", []string{`{"partitionKey":[{"exists":false}]}`}, `...: partitionKey: exists false never holds`},
		{"partitionKey anything-but number", []string{`{"partitionKey":[{"anything-but":["a",1]}]}`}, `...: partitionKey: anything-but of a number always holds`},
		{"or one alternative", []string{`{"$or":[{"partitionKey":["a"]}]}`}, `...: $or: must be a list of at least two objects`},
		{"or not objects", []string{`{"data":{"$or":[["a"],{"b":["c"]}]}}`}, `...: data.$or[0]: must be an object of fields`},
		{"or with a bad key", []string{`{"$or":[{"partitionKey":["a"]},{"eventName":["b"]}]}`}, `...: $or[1].eventName: unknown key "eventName"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.patterns)
			if err == nil {
				t.Fatalf("Parse(%.200q): got no error, want %q", tc.patterns, tc.want)
			}
			got := err.Error()
			if part, ok := strings.CutPrefix(tc.want, "..."); ok {
				if !strings.Contains(got, part) {
					t.Fatalf("Parse(%.200q): got %.300q, want it to contain %q", tc.patterns, got, part)
				}
			} else if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("Parse(%q):\ngot  %q\nwant %q", tc.patterns, got, tc.want)
			}
			var pe *PatternError
			if tc.name != "too many" && (!errors.As(err, &pe) || pe.Pattern != tc.patterns[pe.Index-1]) {
				t.Fatalf("Parse(%q): got %#v, want a *PatternError naming the pattern", tc.patterns, err)
			}
		})
	}
}
