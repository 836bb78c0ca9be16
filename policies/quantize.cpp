#include "policies/quantize.h"
