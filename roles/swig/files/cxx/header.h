/*** header.h: the seed's second SWIG example (C++). example.i includes it in the wrapper code and
     lets SWIG parse it (%include "header.h"); example.cc implements it. ***/
#ifndef EXAMPLE_HEADER_H
#define EXAMPLE_HEADER_H

/* The notebook's call: >>> example.foo() */
int foo();

/* C++ only: an overload (SWIG dispatches on the arguments) and a class with a default argument. */
int foo(int n);

class Counter {
public:
    Counter(int start = 0);
    int next();
    int value() const;

private:
    int current;
};

#endif
