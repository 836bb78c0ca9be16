#include "policies/lowrank.h"
