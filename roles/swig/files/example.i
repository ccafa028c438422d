/*** example.i: the seed's interface, plus add() with a pointer argument ***/
%module example
%{
/* Put header files here or function declarations like below */
extern double My_variable;
extern int fact(int n);
extern int my_mod(int x, int y);
extern char *get_time();
extern void add(double a, double b, double *result);
%}

extern double My_variable;
extern int fact(int n);
extern int my_mod(int x, int y);
extern char *get_time();

/* The seed's question: a C pointer argument. typemaps.i turns `double *OUTPUT` into a return
   value, so Python calls add(1.5, 2.25) and gets 3.75 (SWIG docs, "Argument Handling"). */
%include "typemaps.i"
%apply double *OUTPUT { double *result };
extern void add(double a, double b, double *result);
