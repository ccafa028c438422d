/*** example.cc: the C++ code behind header.h (the seed's second SWIG example). ***/
#include "header.h"

int foo() {
    return 42;
}

int foo(int n) {
    return foo() + n;
}

Counter::Counter(int start) : current(start) {}

int Counter::next() {
    return ++current;
}

int Counter::value() const {
    return current;
}
