// Package filter decides which user records reach the handler: Lambda's
// event filtering (an event source mapping's FilterCriteria, Shardline's
// -filter) for Kinesis records. It is pure: Parse compiles the patterns,
// Match tests one record. The dispatcher calls Match for every user
// record (after KPL de-aggregation) and never hands a record it rejects
// to the handler; such a record still counts as done, so the checkpoint
// moves past it, as Lambda's stream iterator does.
//
// # Patterns
//
// Each pattern is the text of one FilterCriteria.Filters[].Pattern: a JSON
// object of at most 4096 characters. At most 5 patterns are taken (Lambda's
// default quota); no pattern at all means no filtering (Parse returns a
// nil *Filter, which matches everything). A record passes when any
// pattern matches it: Lambda ORs the filters.
//
// The top-level keys of a pattern are those of the record:
//
//   - data: the record's data, matched as JSON. Lambda base64-decodes the
//     event's data field first; Shardline has the bytes as put, which are
//     the same bytes. data must be an object of data fields.
//   - partitionKey: the record's partition key, a string, always present.
//     Rules that no string can satisfy, or that every string does (a
//     number, null, true or false; numeric; exists false; anything-but of
//     a number), are refused.
//   - $or: a list of at least two objects of the keys above, one of which
//     must match.
//
// Lambda's Kinesis page now says that Kinesis event source mappings only
// support filtering on the data key; the general page's filtering
// examples show partitionKey as a Kinesis metadata property, and issue #8
// asks for it, so Shardline accepts it (Lambda itself may refuse such a
// pattern today). The other fields of the event's kinesis object
// (sequenceNumber, approximateArrivalTimestamp, kinesisSchemaVersion,
// encryptionType) and the envelope's (eventName, awsRegion, ...) are
// refused, as is any other key: Lambda documents no filtering on them.
//
// # Rules
//
// Under data, a pattern nests objects as the data does, and ends each
// field with a list of rules, any of which may match (Lambda's "Filter
// rule syntax" table):
//
//	null                  "UserID": [ null ]
//	empty                 "LastName": [ "" ]
//	equals                "Name": [ "Alice" ], "Count": [ 3 ], "Ok": [ true ]
//	equals (ignore case)  "Name": [ { "equals-ignore-case": "alice" } ]
//	and                   "Location": [ "New York" ], "Day": [ "Monday" ]
//	or                    "PaymentType": [ "Credit", "Debit" ]
//	or (multiple fields)  "$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ]
//	not                   "Weather": [ { "anything-but": [ "Raining" ] } ]  (or a single string or number)
//	numeric (equals)      "Price": [ { "numeric": [ "=", 100 ] } ]
//	numeric (range)       "Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ]  (=, <, <=, >, >=; one or two bounds)
//	exists                "ProductName": [ { "exists": true } ]
//	does not exist        "ProductName": [ { "exists": false } ]
//	begins with           "Region": [ { "prefix": "us-" } ]
//	ends with             "FileName": [ { "suffix": ".png" } ]
//
// EventBridge has more operators (wildcard, cidr, anything-but with
// prefix, suffix, equals-ignore-case or wildcard, prefix and suffix with
// equals-ignore-case). Lambda's table lists none of them, and EventBridge's
// own table marks the anything-but forms as unsupported by Pipes, which
// filter the same stream sources; Parse refuses them all with an error that
// says so, rather than accept a filter Lambda would not.
//
// What the rules mean:
//
//   - Strings match character for character, without case folding or any
//     other normalization (but for equals-ignore-case, which folds case
//     as Unicode does). prefix, suffix and equals-ignore-case match
//     strings only.
//   - Numbers in a list of values, and in anything-but, match as written:
//     [300] matches 300 but not 300.0 or 3.0e2 (Lambda: "For numbers,
//     Lambda also uses string representation"). numeric compares values
//     as float64 and matches numbers only: "46" is a string, not 46.
//   - A field of the pattern that the data lacks fails every rule but
//     {"exists": false}; anything-but needs a value too.
//   - Arrays in the data are transparent: a field whose value is an array
//     matches when any element does, at any depth. A nested pattern object
//     matches an array of objects when one element matches all of it.
//   - exists concerns values: a field whose value is an object, or an
//     empty array, does not exist for it. {"exists": false} on a nested
//     field also holds when its parent is absent.
//   - A key given twice in a pattern keeps its last value, as Lambda does.
//     A key given twice in one object of the data is a field with two
//     values, either of which may match (Lambda does not say).
//
// # Data that is not JSON
//
// Lambda's table for Kinesis and DynamoDB ("Properly filtering Kinesis and
// DynamoDB messages"): when the data is not valid JSON, a pattern with data
// properties drops the record, and a pattern without them filters on the
// metadata alone. Match does the same, and counts data that is JSON but not
// an object ("text", 123, [...]) as not JSON, since it has no fields to
// match. A pattern with a data property anywhere, even in one alternative
// of a $or, fails on such data. Nesting deeper than 10000 arrays and
// objects is not JSON either, as for encoding/json.
//
// # Cost
//
// Match decides the patterns that do not look at data first, and reads the
// data only when a pattern that does can still match. It reads the data
// once for all patterns, in one pass that both checks that it is JSON and
// tests the fields the patterns name. It allocates nothing, but for
// partition keys and escaped strings longer than 256 bytes and for filters
// of more than 256 field conditions. A Filter is immutable: Match may be called from any number
// of goroutines at once.
//
// # Why no library
//
// quamina (github.com/timbray/quamina), the maintained Go matcher for
// EventBridge-style patterns, was tried: the module proxy serves only
// v1.4.0 under that path (which declares itself quamina.net/go/quamina, so
// it needs a replace directive), not quamina.net/go/quamina/v2, and v1.4.0
// has no numeric ranges, no suffix, no $or and no anything-but of a single
// value. A small evaluator over the data as it is scanned serves Lambda's
// table exactly.
//
// # Sources
//
//   - Lambda, "Control which events Lambda sends to your function":
//     https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
//     (filter rule syntax, filtering examples, duplicate keys, five filters
//     ORed, and the table for data that is not JSON; the earlier revision
//     of that page, awsdocs/aws-lambda-developer-guide
//     doc_source/invocation-eventfiltering.md, has the same table and
//     examples).
//   - Lambda, "Using event filtering with a Kinesis event source":
//     https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis-filtering.html
//     (the data key, base64-decoded; valid JSON data).
//   - EventBridge, "Comparison operators for use in event patterns":
//     https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
//     (the operators Lambda's table leaves out, and their Pipes support).
//   - CloudFormation, AWS::Lambda::EventSourceMapping Filter: Pattern is at
//     most 4096 characters.
//     https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-lambda-eventsourcemapping-filter.html
package filter
