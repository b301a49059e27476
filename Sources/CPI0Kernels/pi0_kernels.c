#include "pi0_kernels.h"
