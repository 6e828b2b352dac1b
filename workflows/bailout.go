package workflows

import enumspb "go.temporal.io/api/enums/v1"

// bailoutSearchAttributes are the custom search attributes the bailout workflow sets.
var bailoutSearchAttributes = map[string]enumspb.IndexedValueType{}
